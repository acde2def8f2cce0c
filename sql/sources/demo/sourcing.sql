-- demo ERP purchasing info records (md_purch_info) -> canonical sourcing: one supplier per item,
-- a central contract (wh_code NULL: every location, written '*') or a distribution centre's own
-- record. A NULL lead time means the supplier quotes none: the lead_times row applies.

with

info as (

    select
        mat_code,
        wh_code,
        vendor_code,
        lt_days,
        lt_sd_days,
        moq,
        lot_qty,
        purch_price,
        order_fee
    from md_purch_info

),

final as (

    select
        mat_code as sku,
        coalesce(wh_code, '*') as location,
        vendor_code as supplier,
        lt_days as lead_time_days,
        lt_sd_days as lead_time_std_days,
        moq,
        lot_qty as order_multiple,
        purch_price as unit_cost,
        order_fee as fixed_order_cost
    from info

)

select * from final
