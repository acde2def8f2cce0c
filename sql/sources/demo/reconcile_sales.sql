-- reconciliation of the sales extraction, straight from the demo ERP's documents.
-- The window is applied to the day of doc_date (its first 10 characters, 'YYYY-MM-DD') compared as
-- text with start_day and end_day (ISO text, inclusive, bound by the extractor): deliberately not
-- the filter of sales.sql, so that a document that filter misses (a time of day, a time zone) makes
-- the counts differ and the run fail instead of agreeing with the extraction.
-- row_count: distinct (SKU, location, day) with any line of a POSTED document in the window
-- (what sales.sql returns); quantity_sum: units on POSTED SALE documents in the window.

with

doc_header as (

    select
        doc_no,
        wh_code,
        substr(cast(doc_date as char(10)), 1, 10) as doc_day,
        doc_type
    from so_header
    where status = 'POSTED'

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
        doc_header.doc_day,
        doc_header.doc_type,
        doc_line.qty
    from doc_line
    inner join doc_header on doc_header.doc_no = doc_line.doc_no
    where doc_header.doc_day >= :start_day
        and doc_header.doc_day <= :end_day

),

sku_location_days as (

    select mat_code, wh_code, doc_day
    from posted_lines
    group by mat_code, wh_code, doc_day

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
