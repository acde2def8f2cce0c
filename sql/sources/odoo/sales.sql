-- Odoo done stock moves to and from customers -> canonical daily sales.
-- quantity: product_qty (product unit of measure) of done moves from an internal location of a
-- warehouse to a customer location; returns: done moves from a customer location back into one.
-- date: the move's date (stored in UTC) as a business date in the company time zone :tz; window
-- start_date (inclusive) .. end_before (exclusive, the day after the last day).
-- revenue: the sale order line's price_subtotal per unit (line quantity converted to the
-- product's unit with uom factors) times the units moved, rounded to cents; returns count negative.

with

move as (

    select id, product_id, product_qty, location_id, location_dest_id, date, sale_line_id
    from stock_move
    where state = 'done'

),

location as (

    select id, usage, warehouse_id
    from stock_location

),

warehouse as (

    select id, code
    from stock_warehouse

),

product as (

    select id, default_code
    from product_product

),

sale_line as (

    select id, price_subtotal, product_uom_qty, product_uom
    from sale_order_line

),

uom as (

    select id, factor
    from uom_uom

),

customer_moves as (

    select
        move.product_id,
        case when src.usage = 'internal' then src.warehouse_id else dst.warehouse_id end as warehouse_id,
        cast(timezone(cast(:tz as text), move.date at time zone 'UTC') as date) as business_date,
        case when src.usage = 'internal' then move.product_qty else 0 end as sold,
        case when src.usage = 'customer' then move.product_qty else 0 end as returned,
        move.sale_line_id
    from move
    inner join location as src on src.id = move.location_id
    inner join location as dst on dst.id = move.location_dest_id
    where (src.usage = 'internal' and dst.usage = 'customer')
        or (src.usage = 'customer' and dst.usage = 'internal')

),

priced as (

    select
        customer_moves.*,
        sale_line.price_subtotal / nullif(sale_line.product_uom_qty / nullif(uom.factor, 0), 0) as unit_value
    from customer_moves
    left join sale_line on sale_line.id = customer_moves.sale_line_id
    left join uom on uom.id = sale_line.product_uom

),

final as (

    select
        coalesce(product.default_code, 'odoo:' || product.id) as sku,
        warehouse.code as location,
        priced.business_date as date,
        sum(priced.sold) as quantity,
        sum(priced.returned) as returns,
        round(coalesce(sum((priced.sold - priced.returned) * priced.unit_value), 0), 2) as revenue
    from priced
    inner join product on product.id = priced.product_id
    inner join warehouse on warehouse.id = priced.warehouse_id
    where priced.business_date >= :start_date
        and priced.business_date < :end_before
    group by coalesce(product.default_code, 'odoo:' || product.id), warehouse.code, priced.business_date

)

select * from final
