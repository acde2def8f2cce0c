-- Odoo stock quants (stock_quant) -> canonical stock, dated the run date (:snapshot_date).
-- Quants are Odoo's current balances: one row per product, warehouse and lot over the internal
-- locations of each warehouse. lot: stock_lot.name ('' without lot); expiry: stock_lot's
-- expiration_date (product_expiry module). in_transit: 0 (Odoo keeps goods in transit in a
-- transit location, not held against the receiver).

with

quant as (

    select product_id, location_id, lot_id, quantity, reserved_quantity
    from stock_quant

),

location as (

    select id, warehouse_id
    from stock_location
    where usage = 'internal'

),

warehouse as (

    select id, code
    from stock_warehouse

),

lot as (

    select id, name, expiration_date
    from stock_lot

),

product as (

    select id, default_code
    from product_product

),

final as (

    select
        coalesce(product.default_code, 'odoo:' || product.id) as sku,
        warehouse.code as location,
        cast(:snapshot_date as date) as snapshot_date,
        coalesce(lot.name, '') as lot,
        cast(min(lot.expiration_date) as date) as expiry_date,
        sum(quant.quantity) as on_hand,
        0 as in_transit,
        sum(quant.reserved_quantity) as reserved
    from quant
    inner join location on location.id = quant.location_id
    inner join warehouse on warehouse.id = location.warehouse_id
    inner join product on product.id = quant.product_id
    left join lot on lot.id = quant.lot_id
    group by coalesce(product.default_code, 'odoo:' || product.id), warehouse.code, coalesce(lot.name, '')

)

select * from final
