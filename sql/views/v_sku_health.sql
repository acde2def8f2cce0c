-- Health of every SKU and location in the latest published run: the inventory policy row with
-- the forecast units of the first 28 days ahead (horizon 1..28) beside it; null when the run has
-- no forecast for that SKU and location (not the same as a forecast of zero).
with latest as (
    select max(run_date) as run_date
    from published_runs
),

health as (
    select inventory_policy.*
    from inventory_policy
    inner join latest on inventory_policy.run_date = latest.run_date
),

forecast_28d as (
    select
        forecasts.sku,
        forecasts.location,
        sum(forecasts.mean) as forecast_28d_units
    from forecasts
    inner join latest on forecasts.run_date = latest.run_date
    where forecasts.horizon between 1 and 28
    group by forecasts.sku, forecasts.location
),

final as (
    select
        health.*,
        forecast_28d.forecast_28d_units
    from health
    left join forecast_28d
        on health.sku = forecast_28d.sku
        and health.location = forecast_28d.location
)

select * from final
order by sku, location
