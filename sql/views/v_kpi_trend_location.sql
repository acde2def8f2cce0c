-- KPIs per location over all categories (category '*'), one row per published run date, location
-- and metric: the trend of each warehouse or store (the network is location '*').
with by_location as (
    select
        kpis.run_date,
        kpis.run_id,
        kpis.location,
        kpis.metric,
        kpis.value
    from kpis
    inner join published_runs on kpis.run_date = published_runs.run_date
    where kpis.category = '*'
),

final as (
    select * from by_location
)

select * from final
order by location, metric, run_date
