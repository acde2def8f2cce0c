-- Alerts of the latest published run: high severity first, then medium, then low; within a
-- severity, the most money at risk first.
with latest as (
    select max(run_date) as run_date
    from published_runs
),

ranked as (
    select
        alerts.*,
        case alerts.severity
            when 'high' then 1
            when 'medium' then 2
            when 'low' then 3
            else 4
        end as severity_rank
    from alerts
    inner join latest on alerts.run_date = latest.run_date
),

final as (
    select * from ranked
)

select * from final
order by severity_rank, value_at_risk desc, alert_type, sku, location, lot
