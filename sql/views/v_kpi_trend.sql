-- Network-wide KPIs over all categories (location '*', category '*'), one row per published run
-- date and metric: the trend a planner follows from day to day.
with network as (
    select
        kpis.run_date,
        kpis.run_id,
        kpis.metric,
        kpis.value
    from kpis
    inner join published_runs on kpis.run_date = published_runs.run_date
    where kpis.location = '*'
        and kpis.category = '*'
),

final as (
    select * from network
)

select * from final
order by run_date, metric
