-- demo ERP stock balances per lot (inv_balance) -> canonical stock for one snapshot date.
-- parameter snapshot_date (a date, bound by the extractor). lot = batch_no ('' when the item is not lot-managed).

with

balance as (

    select
        snap_date,
        wh_code,
        mat_code,
        batch_no,
        exp_date,
        qty_onhand,
        qty_transit,
        qty_reserved
    from inv_balance
    where snap_date = :snapshot_date

),

final as (

    select
        mat_code as sku,
        wh_code as location,
        snap_date as snapshot_date,
        coalesce(batch_no, '') as lot,
        exp_date as expiry_date,
        qty_onhand as on_hand,
        coalesce(qty_transit, 0) as in_transit,
        coalesce(qty_reserved, 0) as reserved
    from balance

)

select * from final
