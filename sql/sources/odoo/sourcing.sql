-- Odoo vendor pricelists (product_supplierinfo) -> canonical sourcing: for every product variant,
-- its first valid vendor line (a line for the variant itself before one for its template, then
-- Odoo's own order: sequence, id), valid on the run date (:snapshot_date between date_start and
-- date_end when they are set). Odoo's vendor lines are not per warehouse: location '*'. supplier:
-- the vendor's internal reference (res_partner.ref), else its name. lead_time_days: the vendor's
-- delivery lead time (delay, days; its spread is not held). moq: min_qty. order_multiple 1 and
-- fixed_order_cost 0: Odoo holds neither on the vendor line. unit_cost: price (the vendor's
-- currency is assumed to be the company's).

with

info as (

    select id, partner_id, product_tmpl_id, product_id, min_qty, price, delay, sequence
    from product_supplierinfo
    where (date_start is null or date_start <= cast(:snapshot_date as date))
        and (date_end is null or date_end >= cast(:snapshot_date as date))

),

product as (

    select id, default_code, product_tmpl_id
    from product_product

),

vendor as (

    select id, name, ref
    from res_partner

),

ranked as (

    select
        product.id as product_id,
        product.default_code,
        info.partner_id,
        info.min_qty,
        info.price,
        info.delay,
        row_number() over (
            partition by product.id
            order by case when info.product_id is null then 1 else 0 end, info.sequence, info.id
        ) as rank_in_product
    from info
    inner join product
        on product.product_tmpl_id = info.product_tmpl_id
        and (info.product_id is null or info.product_id = product.id)

),

final as (

    select
        coalesce(ranked.default_code, 'odoo:' || ranked.product_id) as sku,
        '*' as location,
        coalesce(nullif(vendor.ref, ''), vendor.name) as supplier,
        cast(ranked.delay as double precision) as lead_time_days,
        cast(null as double precision) as lead_time_std_days,
        cast(ranked.min_qty as double precision) as moq,
        cast(1 as double precision) as order_multiple,
        cast(ranked.price as double precision) as unit_cost,
        cast(0 as double precision) as fixed_order_cost
    from ranked
    inner join vendor on vendor.id = ranked.partner_id
    where ranked.rank_in_product = 1

)

select * from final
