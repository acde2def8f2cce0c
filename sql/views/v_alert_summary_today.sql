-- Alerts of the latest published run counted per severity and type, with the value at risk:
-- high severity first, then the most money at risk.
with latest as (
    select max(run_date) as run_date
    from published_runs
),

today as (
    select alerts.*
    from alerts
    inner join latest on alerts.run_date = latest.run_date
),

final as (
    select
        today.run_date,
        today.severity,
        today.alert_type,
        count(*) as alerts,
        sum(today.units) as units,
        sum(today.value_at_risk) as value_at_risk,
        case today.severity
            when 'high' then 1
            when 'medium' then 2
            when 'low' then 3
            else 4
        end as severity_rank
    from today
    group by today.run_date, today.severity, today.alert_type
)

select * from final
order by severity_rank, value_at_risk desc, alert_type
