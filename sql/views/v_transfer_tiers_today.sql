-- Transfers of the latest published run summed per approval tier: how many, how many units, what
-- they cost and what they are expected to bring. 'auto' first, then 'planner' (needs approval).
with latest as (
    select max(run_date) as run_date
    from published_runs
),

today as (
    select transfers.*
    from transfers
    inner join latest on transfers.run_date = latest.run_date
),

final as (
    select
        today.run_date,
        today.approval_tier,
        count(*) as transfers,
        sum(today.quantity) as units,
        sum(today.transfer_cost) as transfer_cost,
        sum(today.expected_benefit) as expected_benefit
    from today
    group by today.run_date, today.approval_tier
)

select * from final
order by approval_tier
