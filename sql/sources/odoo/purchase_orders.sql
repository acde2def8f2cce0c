-- Odoo purchase order lines (purchase_order_line, purchase_order) -> canonical purchase_orders:
-- confirmed orders (state 'purchase', or 'done' = locked) with units still to receive. open_qty:
-- (product_qty - qty_received), both in the line's unit, converted to the product's unit by the
-- line's own ratio product_uom_qty / product_qty. location: the warehouse of the order's receipt
-- operation type (stock_picking_type.warehouse_id). expected_date: the line's date_planned as a
-- business date in the company time zone (:tz). Lines of the same product on one order are summed.

with

po as (

    select id, name, partner_id, state, date_order, picking_type_id
    from purchase_order
    where state in ('purchase', 'done')

),

line as (

    select order_id, product_id, product_qty, product_uom_qty, qty_received, date_planned
    from purchase_order_line
    where product_qty > qty_received

),

picking_type as (

    select id, warehouse_id
    from stock_picking_type

),

warehouse as (

    select id, code
    from stock_warehouse

),

product as (

    select id, default_code
    from product_product

),

vendor as (

    select id, name, ref
    from res_partner

),

final as (

    select
        po.name as po_no,
        coalesce(product.default_code, 'odoo:' || product.id) as sku,
        warehouse.code as location,
        coalesce(nullif(vendor.ref, ''), vendor.name) as supplier,
        sum(
            cast(line.product_qty - line.qty_received as double precision)
            * cast(line.product_uom_qty as double precision) / cast(line.product_qty as double precision)
        ) as open_qty,
        cast(min(timezone(cast(:tz as text), po.date_order at time zone 'UTC')) as date) as order_date,
        cast(min(timezone(cast(:tz as text), line.date_planned at time zone 'UTC')) as date) as expected_date
    from line
    inner join po on po.id = line.order_id
    inner join product on product.id = line.product_id
    inner join picking_type on picking_type.id = po.picking_type_id
    inner join warehouse on warehouse.id = picking_type.warehouse_id
    left join vendor on vendor.id = po.partner_id
    group by po.name, product.id, product.default_code, warehouse.code, vendor.ref, vendor.name

)

select * from final
