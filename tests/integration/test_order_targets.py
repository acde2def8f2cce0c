"""Order export targets against real databases: the generic SQL write-back on SQLite, PostgreSQL and
MariaDB (mixed-case table and column names, quoted, never pasted), idempotent re-export, a change
exported as a change, a failed export kept and retried; the file drop in GBK and xlsx."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import openpyxl
import pandas as pd
import pytest
import sqlalchemy as sa

from pipelines import orderbook, reporting
from pipelines.config import load_config
from pipelines.order_export import export_pending

pytestmark = pytest.mark.integration

RUN = date(2026, 11, 25)
HEADER = {
    "table": "TransferReq",
    "columns": {
        "order_no": "DocNo",
        "revision": "Rev",
        "status": "State",
        "order_date": "DocDate",
        "departure_date": "ShipOn",
        "from_location": "FromWH",
        "to_location": "ToWH",
    },
}
LINES = {
    "table": "TransferReqLine",
    "columns": {"order_no": "DocNo", "line_no": "Line", "sku": "Item", "quantity": "Qty"},
}
DDL = {
    "header": "create table {q}TransferReq{q} ({q}DocNo{q} varchar(40) primary key, {q}Rev{q} integer,"
    " {q}State{q} varchar(20), {q}DocDate{q} date, {q}ShipOn{q} date, {q}FromWH{q} varchar(20),"
    " {q}ToWH{q} varchar(20), {q}Shipped{q} integer)",
    "lines": "create table {q}TransferReqLine{q} ({q}DocNo{q} varchar(40), {q}Line{q} integer,"
    " {q}Item{q} varchar(20), {q}Qty{q} double precision, primary key ({q}DocNo{q}, {q}Item{q}))",
}


def _decisions(*rows: tuple[str, str, str, str, float]) -> pd.DataFrame:
    """(sku, from, to, decision, quantity) decided on RUN's recommendations, latest-decision shaped."""
    df = pd.DataFrame(rows, columns=["sku", "from_location", "to_location", "decision", "new_quantity"])
    return df.assign(rec_run_date=pd.Timestamp(RUN), rec_run_id="r1", decided_by="ann")


def _book(cfg: Any, decisions: pd.DataFrame) -> dict[str, int]:
    url = cfg.reporting_url()
    reporting.migrate(url)
    with reporting.engine_for(url).execution_options(tiaobo_write=True).begin() as conn:
        orderbook.sync_from_decisions(conn, decisions, RUN)
    return export_pending(cfg, url, RUN)


def _erp(url: str, q: str) -> tuple[list[tuple], list[tuple]]:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        h = conn.execute(sa.text(f"select {q}DocNo{q}, {q}Rev{q}, {q}State{q} from {q}TransferReq{q} order by 1")).all()
        ln = conn.execute(
            sa.text(f"select {q}DocNo{q}, {q}Item{q}, {q}Qty{q} from {q}TransferReqLine{q} order by 1, 2")
        ).all()
    engine.dispose()
    return [tuple(r) for r in h], [(a, b, float(c)) for a, b, c in ln]


def _exports(cfg: Any) -> pd.DataFrame:
    with reporting.engine_for(cfg.reporting_url()).connect() as conn:
        return pd.DataFrame(conn.execute(sa.select(orderbook.EXPORTS)).mappings().all())


@pytest.mark.parametrize("server", ["sqlite", "pg_url", "mysql_url"])
def test_generic_sql_write_back(server, request, tmp_path):
    url = f"sqlite:///{tmp_path / 'erp.sqlite'}" if server == "sqlite" else request.getfixturevalue(server)
    q = "`" if url.startswith("mysql") else '"'
    target = {"name": "erp", "kind": "sql", "profile": "generic", "url": url, "header": HEADER, "lines": LINES}
    cfg = load_config(
        overrides={
            "staging_dir": str(tmp_path / "staging"),
            "output_dir": str(tmp_path / "out"),
            "orders": {"targets": [target]},
        }
    )
    first = _decisions(("A", "DC", "S1", "approve", 24.0), ("B", "DC", "S1", "approve", 12.0))
    # the ERP's tables do not exist yet: the export fails, is recorded, and the order is kept
    assert _book(cfg, first) == {"exported": 0, "export_failed": 1}
    failed = _exports(cfg)
    assert failed["status"].tolist() == ["failed"] and "TransferReq" in failed["message"].iloc[0]
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text(DDL["header"].format(q=q)))
        conn.execute(sa.text(DDL["lines"].format(q=q)))
    engine.dispose()
    # retried at the next attempt: written once; a second attempt has nothing left to do
    assert _book(cfg, first) == {"exported": 1, "export_failed": 0}
    assert _book(cfg, first) == {"exported": 0, "export_failed": 0}
    header, lines = _erp(url, q)
    assert len(header) == 1 and header[0][1:] == (1, "APPROVED")
    no = header[0][0]
    assert lines == [(no, "A", 24.0), (no, "B", 12.0)]
    # changed in the workbench after export: the same order, revision 2, B now 6 units
    changed = _decisions(("A", "DC", "S1", "approve", 24.0), ("B", "DC", "S1", "approve", 6.0))
    assert _book(cfg, changed) == {"exported": 1, "export_failed": 0}
    header, lines = _erp(url, q)
    assert header == [(no, 2, "APPROVED")] and lines == [(no, "A", 24.0), (no, "B", 6.0)]
    # every line rejected: the order is cancelled in the ERP, still one order
    gone = _decisions(("A", "DC", "S1", "reject", 0.0), ("B", "DC", "S1", "reject", 0.0))
    _book(cfg, gone)
    header, lines = _erp(url, q)
    assert header == [(no, 3, "CANCELLED")] and [x[2] for x in lines] == [0.0, 0.0]
    reporting.dispose_engine(cfg.reporting_url())


def test_a_sql_injection_in_a_table_name_is_refused_when_the_config_loads(tmp_path):
    bad = {**HEADER, "table": 'x"; drop table items; --'}
    target = {"name": "erp", "kind": "sql", "profile": "generic", "header": bad, "lines": LINES}
    with pytest.raises(Exception, match="is not a table name"):
        load_config(overrides={"staging_dir": str(tmp_path / "s"), "orders": {"targets": [target]}})


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_file_drop_gbk_csv_and_xlsx(fmt, tmp_path):
    folder = tmp_path / "drop"
    columns = {"order_no": "调拨单号", "sku": "物料编码", "quantity": "数量", "action": "操作"}
    target = {"name": "drop", "kind": "file", "folder": str(folder), "format": fmt, "encoding": "gbk"}
    cfg = load_config(
        overrides={
            "staging_dir": str(tmp_path / "staging"),
            "output_dir": str(tmp_path / "out"),
            "orders": {"targets": [{**target, "file_columns": columns}]},
        }
    )
    _book(cfg, _decisions(("绿茶-1", "DC", "S1", "approve", 24.0)))
    _book(cfg, _decisions(("绿茶-1", "DC", "S1", "approve", 12.0)))
    files = sorted(folder.iterdir())
    assert [p.name.rsplit("-r", 1)[1] for p in files] == [f"1.{fmt}", f"2.{fmt}"]  # one file per revision
    assert not any(p.name.startswith(".") for p in files)  # no temporary file left
    read = _read(files[1], fmt)
    assert list(read.columns) == list(columns.values())
    assert read.values.tolist() == [[files[1].name.rsplit("-r", 1)[0], "绿茶-1", 12, "change"]]
    reporting.dispose_engine(cfg.reporting_url())


def _read(path: Path, fmt: str) -> pd.DataFrame:
    if fmt == "csv":
        path.read_bytes().decode("gbk")  # GBK, not UTF-8
        return pd.read_csv(path, encoding="gbk")
    wb = openpyxl.load_workbook(path)
    rows = list(wb.active.values)
    return pd.DataFrame(rows[1:], columns=rows[0])
