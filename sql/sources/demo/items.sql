-- demo ERP item master (md_material) -> canonical items: rename and cast only.
-- active: status 'A' (active) -> 1, 'D' (discontinued) -> 0.

with

material as (

    select
        mat_code,
        mat_name,
        mat_name_en,
        cat_code,
        std_cost,
        list_price,
        pack_qty,
        shelf_days,
        abc_fixed,
        status
    from md_material

),

final as (

    select
        mat_code as sku,
        mat_name as name,
        mat_name_en as name_en,
        cat_code as category,
        std_cost as unit_cost,
        list_price as unit_price,
        pack_qty as pack_size,
        shelf_days as shelf_life_days,
        abc_fixed as abc_override,
        case when status = 'A' then 1 else 0 end as active
    from material

)

select * from final
