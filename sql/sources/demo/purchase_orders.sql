-- demo ERP purchase orders (po_header / po_line) -> canonical purchase_orders: the units still
-- to come on each order line (ordered - received) of orders OPEN or PARTIAL (partly received);
-- CLOSED (fully received) and CANCELLED orders are not on order. Lines of the same item on one
-- order are summed (the key is order, item, location); the promise date is the expected receipt.

with

header as (

    select
        po_no,
        vendor_code,
        wh_code,
        po_date,
        promise_date
    from po_header
    where status in ('OPEN', 'PARTIAL')

),

line as (

    select
        po_no,
        mat_code,
        qty_ordered,
        qty_received
    from po_line
    where qty_ordered > qty_received

),

final as (

    select
        header.po_no as po_no,
        line.mat_code as sku,
        header.wh_code as location,
        header.vendor_code as supplier,
        sum(line.qty_ordered - line.qty_received) as open_qty,
        header.po_date as order_date,
        header.promise_date as expected_date
    from line
    inner join header on header.po_no = line.po_no
    group by header.po_no, line.mat_code, header.wh_code, header.vendor_code, header.po_date, header.promise_date

)

select * from final
