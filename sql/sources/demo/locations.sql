-- demo ERP warehouses and stores (md_warehouse) -> canonical locations: rename and cast only.
-- type: 'DC' -> 'dc', 'STORE' -> 'store'; active = not is_closed.

with

warehouse as (

    select
        wh_code,
        wh_name,
        wh_kind,
        region_name,
        ship_flag,
        recv_flag,
        is_closed
    from md_warehouse

),

final as (

    select
        wh_code as location,
        wh_name as name,
        lower(wh_kind) as type,
        region_name as region,
        ship_flag as can_ship,
        recv_flag as can_receive,
        case when is_closed = 1 then 0 else 1 end as active
    from warehouse

)

select * from final
