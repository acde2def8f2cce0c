-- Odoo warehouses (stock_warehouse) -> canonical locations.
-- type: 'dc' when the warehouse resupplies another one (stock_wh_resupply_table), else 'store'.
-- region: the state of the warehouse address, else its city, else 'unknown'.

with

warehouse as (

    select id, code, name, active, partner_id
    from stock_warehouse

),

partner as (

    select id, city, state_id
    from res_partner

),

country_state as (

    select id, name
    from res_country_state

),

supplier as (

    select distinct supplier_wh_id
    from stock_wh_resupply_table

),

final as (

    select
        warehouse.code as location,
        warehouse.name as name,
        case when supplier.supplier_wh_id is not null then 'dc' else 'store' end as type,
        coalesce(country_state.name, partner.city, 'unknown') as region,
        warehouse.active as can_ship,
        warehouse.active as can_receive,
        warehouse.active as active
    from warehouse
    left join partner on partner.id = warehouse.partner_id
    left join country_state on country_state.id = partner.state_id
    left join supplier on supplier.supplier_wh_id = warehouse.id

)

select * from final
