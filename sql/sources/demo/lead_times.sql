-- demo ERP replenishment parameters (md_replenish) -> canonical lead_times: rename only.
-- SKU-locations without a row are left out here; the policy stage defaults and flags them.

with

replenish as (

    select
        wh_code,
        mat_code,
        lt_avg_days,
        lt_sd_days,
        review_days
    from md_replenish

),

final as (

    select
        mat_code as sku,
        wh_code as location,
        lt_avg_days as lead_time_days,
        lt_sd_days as lead_time_std_days,
        review_days as review_period_days
    from replenish

)

select * from final
