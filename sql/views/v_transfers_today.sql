-- Transfers recommended by the latest published run: auto-approved ones first, then the ones a
-- planner must approve; within a tier, the biggest expected benefit first.
with latest as (
    select max(run_date) as run_date
    from published_runs
),

final as (
    select transfers.*
    from transfers
    inner join latest on transfers.run_date = latest.run_date
)

select * from final
order by approval_tier, expected_benefit desc, sku, from_location, to_location
