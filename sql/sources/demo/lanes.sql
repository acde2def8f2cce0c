-- demo ERP transfer routes (tr_route) -> canonical lanes: rename only.
-- capacity: max_qty, null = unlimited.

with

route as (

    select
        from_wh,
        to_wh,
        freight_unit,
        freight_trip,
        lead_days,
        min_qty,
        max_qty
    from tr_route

),

final as (

    select
        from_wh as from_location,
        to_wh as to_location,
        freight_unit as cost_per_unit,
        freight_trip as fixed_cost_per_shipment,
        lead_days as transit_days,
        min_qty as min_units,
        max_qty as capacity
    from route

)

select * from final
