-- demo ERP sales-out documents (so_header + so_line) -> canonical daily sales.
-- parameters start_date (inclusive) and end_before (exclusive: the day after the window's last day),
-- dates bound by the extractor, filter on doc_date. An exclusive upper bound keeps the last day's
-- documents whose doc_date carries a time of day ('2026-11-24 10:15:00' on a SQLite source stores
-- text, which an inclusive `<= '2026-11-24'` would drop). date = the first 10 characters of doc_date
-- (its day, whether it is a date, a timestamp or ISO text), so documents of one day sum into one row.
-- only POSTED documents (CANCELLED ones are ignored); lines are summed per SKU, location and day:
-- quantity = units of SALE documents, returns = units of RETURN documents (qty is positive on
-- both), revenue = SALE amount minus RETURN amount.

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
        and doc_date < :end_before

),

doc_line as (

    select
        doc_no,
        mat_code,
        qty,
        amount
    from so_line

),

posted_lines as (

    select
        doc_line.mat_code,
        doc_header.wh_code,
        substr(cast(doc_header.doc_date as char(10)), 1, 10) as doc_day,
        doc_header.doc_type,
        doc_line.qty,
        doc_line.amount
    from doc_line
    inner join doc_header on doc_header.doc_no = doc_line.doc_no

),

final as (

    select
        mat_code as sku,
        wh_code as location,
        doc_day as date,
        sum(case when doc_type = 'SALE' then qty else 0 end) as quantity,
        sum(case when doc_type = 'RETURN' then qty else 0 end) as returns,
        sum(
            case
                when doc_type = 'SALE' then amount
                when doc_type = 'RETURN' then -amount
                else 0
            end
        ) as revenue
    from posted_lines
    group by mat_code, wh_code, doc_day

)

select * from final
