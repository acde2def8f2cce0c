-- reconciliation of the sales extraction, straight from the demo ERP's documents.
-- parameters start_date and end_date (dates, inclusive, bound by the extractor) filter on doc_date.
-- row_count: distinct (SKU, location, day) with any line of a POSTED document in the window
-- (what sales.sql returns); quantity_sum: units on POSTED SALE documents in the window.

with

doc_header as (

    select
        doc_no,
        wh_code,
        doc_date,
        doc_type
    from so_header
    where status = 'POSTED'
        and doc_date >= :start_date
        and doc_date <= :end_date

),

doc_line as (

    select
        doc_no,
        mat_code,
        qty
    from so_line

),

posted_lines as (

    select
        doc_line.mat_code,
        doc_header.wh_code,
        doc_header.doc_date,
        doc_header.doc_type,
        doc_line.qty
    from doc_line
    inner join doc_header on doc_header.doc_no = doc_line.doc_no

),

sku_location_days as (

    select mat_code, wh_code, doc_date
    from posted_lines
    group by mat_code, wh_code, doc_date

),

row_total as (

    select count(*) as row_count
    from sku_location_days

),

quantity_total as (

    select coalesce(sum(qty), 0) as quantity_sum
    from posted_lines
    where doc_type = 'SALE'

),

final as (

    select
        row_total.row_count,
        quantity_total.quantity_sum
    from row_total
    cross join quantity_total

)

select * from final
