-- demo ERP transfer requests (tr_request_header / tr_request_line, written by Tiaobo's order export)
-- -> canonical transfer_status: what the warehouse did with each exported order line.
-- parameter start_date (the first day of the history window): requests raised since then.

with

header as (

    select
        req_no,
        status,
        ship_date,
        recv_date
    from tr_request_header
    where req_date >= :start_date

),

line as (

    select
        req_no,
        mat_code,
        qty_shipped,
        qty_received
    from tr_request_line

),

final as (

    select
        line.req_no as order_no,
        line.mat_code as sku,
        lower(header.status) as status,
        line.qty_shipped as shipped_qty,
        header.ship_date as shipped_date,
        line.qty_received as received_qty,
        header.recv_date as received_date
    from line
    inner join header on header.req_no = line.req_no

)

select * from final
