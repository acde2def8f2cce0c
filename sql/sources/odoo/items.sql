-- Odoo products (product_product + product_template + product_category) -> canonical items.
-- name: product_template.name is jsonb translations in Odoo 16+ ({"en_US": ..., "zh_CN": ...});
-- the :lang translation, else en_US, else the plain text of older versions (varchar column).
-- sku: the internal reference (default_code), else 'odoo:' || id. unit_cost: the company's
-- standard_price property (ir_property, Odoo 16/17), 0 when none is set. pack_size 1: Odoo
-- packagings are per sale, not transfer packs. shelf life and ABC override: not held by Odoo.

with

product as (

    select id, default_code, product_tmpl_id, active
    from product_product

),

template as (

    select id, to_jsonb(name) as name_json, categ_id, list_price, active
    from product_template

),

category as (

    select id, complete_name
    from product_category

),

standard_price as (

    select
        cast(substr(res_id, length('product.product,') + 1) as integer) as product_id,
        max(value_float) as cost
    from ir_property
    where name = 'standard_price'
        and res_id like 'product.product,%'
    group by res_id

),

final as (

    select
        coalesce(product.default_code, 'odoo:' || product.id) as sku,
        coalesce(
            template.name_json ->> cast(:lang as text),
            template.name_json ->> 'en_US',
            template.name_json #>> '{}'
        ) as name,
        template.name_json ->> 'en_US' as name_en,
        coalesce(category.complete_name, 'All') as category,
        coalesce(standard_price.cost, 0) as unit_cost,
        template.list_price as unit_price,
        1 as pack_size,
        cast(null as integer) as shelf_life_days,
        cast(null as text) as abc_override,
        (product.active and template.active) as active
    from product
    inner join template on template.id = product.product_tmpl_id
    left join category on category.id = template.categ_id
    left join standard_price on standard_price.product_id = product.id

)

select * from final
