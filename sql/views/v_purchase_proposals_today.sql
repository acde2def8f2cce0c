-- Purchase proposals of the latest published run: the orders to place first (earliest order-by
-- date), and among those the ones that run out before the goods arrive first.
with latest as (
    select max(run_date) as run_date
    from published_runs
),

final as (
    select purchase_proposals.*
    from purchase_proposals
    inner join latest on purchase_proposals.run_date = latest.run_date
)

select * from final
order by order_by, runs_out_before_receipt desc, cost desc, sku, location
