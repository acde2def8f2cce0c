"""Unit tests of the planner report, the digest email, the failure email and .eml delivery."""

from __future__ import annotations

import email
import io
from datetime import date
from email import policy as email_policy
from email.message import EmailMessage
from html.parser import HTMLParser
from pathlib import Path

import openpyxl
import pandas as pd
import pytest

from pipelines import contract
from pipelines.config import RecipientGroup, load_config
from pipelines.context import RunContext
from pipelines.notify import (
    build_digest,
    build_failure_email,
    deliver,
    filter_for_group,
    notify_stage,
    send_failure,
)
from pipelines.report import SECTION_IDS, render_report, write_report
from tests.factories import message_parts, table, transfer, transfer_review_rows

pytestmark = (
    pytest.mark.integration
)  # renders the HTML report (matplotlib charts) and emails, SQLite for the report command

RUN_DATE = date(2026, 11, 25)
RUN_ID = "20261125-abcdef123456"
SCRIPT = "<script>alert('x')</script>"


# --------------------------------------------------------------------------------------------
# Hand-made frames
# --------------------------------------------------------------------------------------------


def alert(kind: str, sku: str, loc: str, severity: str, var: float, **kw) -> dict:
    row = {
        "alert_type": kind,
        "sku": sku,
        "location": loc,
        "lot": "",
        "severity": severity,
        "units": 12.0,
        "value_at_risk": var,
        "event_date": pd.Timestamp("2026-11-30"),
        "action": "expedite_or_transfer",
        "explanation_en": f"{sku} at {loc}: {kind}.",
        "explanation_zh": f"{sku} 在 {loc}：预警。",
        "plan_units": 0.0,
        "plan_locations": "",
        "plan_reason": "",
    }
    row.update(kw)
    return row


@pytest.fixture(name="items")
def report_items() -> pd.DataFrame:
    base = {
        "unit_cost": 5.0,
        "unit_price": 9.0,
        "pack_size": 6,
        "shelf_life_days": None,
        "abc_override": None,
        "active": True,
    }
    return table(
        "items",
        [
            {**base, "sku": "S1", "name": SCRIPT, "name_en": None, "category": "food"},
            {**base, "sku": "S2", "name": "绿茶 500ml", "name_en": None, "category": "drinks"},
            {**base, "sku": "S3", "name": "Soap =cmd", "name_en": "Soap", "category": "home"},
        ],
    )


@pytest.fixture(name="locations")
def report_locations() -> pd.DataFrame:
    base = {"type": "store", "can_ship": True, "can_receive": True, "active": True}
    return table(
        "locations",
        [
            {**base, "location": "DC1", "name": "上海仓", "type": "dc", "region": "east"},
            {**base, "location": "ST1", "name": "南京店", "region": "east"},
            {**base, "location": "ST2", "name": "成都店", "region": "west"},
            {**base, "location": "ST3", "name": "重庆店", "region": "west"},
        ],
    )


@pytest.fixture()
def frames() -> dict[str, pd.DataFrame]:
    transfers = table(
        "transfers",
        [
            transfer("S1", "DC1", "ST1", 60, "planner", 500.0, explanation_en=f"Move 60 of {SCRIPT} now."),
            transfer("S2", "ST2", "ST3", 12, "auto", 80.0),
            transfer("S2", "DC1", "ST2", 120, "planner", 900.0),
            transfer(
                "S3",
                "ST2",
                "ST3",
                6,
                "planner",
                40.0,
                explanation_en='=HYPERLINK("x")',
                explanation_zh='=HYPERLINK("x")',
            ),
        ],
    )
    alerts = table(
        "alerts",
        [
            alert("stockout_risk", "S1", "ST1", "high", 300.0),
            alert("stockout_risk", "S2", "ST3", "high", 1200.0),
            alert("excess", "S3", "ST2", "low", 5000.0),
            alert("slow_mover", "S2", "DC1", "medium", 50.0),
        ],
    )
    days = pd.date_range("2026-11-25", periods=28, freq="D")
    fc_rows = []
    for i, (sku, loc, level) in enumerate(
        [
            ("S1", "ST1", 10.0),
            ("S2", "ST2", 4.0),
            ("S2", "ST3", 3.0),
            ("S3", "ST2", 1.0),
            ("S1", "DC1", 0.5),
            ("S3", "ST3", 0.2),
        ]
    ):
        for h, d in enumerate(days, start=1):
            m = level * (1 + 0.1 * ((h + i) % 7 == 5))
            fc_rows.append(
                {
                    "sku": sku,
                    "location": loc,
                    "target_date": d,
                    "horizon": h,
                    "mean": m,
                    "p50": m * 0.9,
                    "p90": m * 1.6,
                    "p95": m * 1.9,
                    "p99": m * 2.5,
                    "model": "ets",
                }
            )
    policy_rows = []
    for sku, loc, band, cat in [
        ("S1", "ST1", "under", "food"),
        ("S2", "ST2", "healthy", "drinks"),
        ("S2", "ST3", "under", "drinks"),
        ("S3", "ST2", "over", "home"),
        ("S1", "DC1", "no_demand", "food"),
    ]:
        policy_rows.append(
            {
                "sku": sku,
                "location": loc,
                "category": cat,
                "abc_class": "A",
                "abc_class_network": "A",
                "abc_class_location": "A",
                "xyz_class": "X",
                "demand_pattern": "smooth",
                "ss_method": "normal",
                "demand_mean": 1.0,
                "demand_std": 0.5,
                "lead_time_days": 7.0,
                "review_period_days": 7.0,
                "service_level": 0.95,
                "safety_stock": 3.0,
                "reorder_point": 10.0,
                "order_up_to": 17.0,
                "on_hand": 5.0,
                "in_transit": 0.0,
                "on_order": 0.0,
                "on_order_later": 0.0,
                "available": 5.0,
                "days_of_cover": 5.0,
                "health_band": band,
                "lead_time_defaulted": False,
                "explanation_en": "x",
                "explanation_zh": "x",
            }
        )
    return {
        "transfers": transfers,
        "alerts": alerts,
        "forecasts": table("forecasts", fc_rows),
        "inventory_policy": table("inventory_policy", policy_rows),
        "kpis": table(
            "kpis",
            [
                {"location": "*", "category": "*", "metric": "fill_rate", "value": 0.97},
                {"location": "ST1", "category": "*", "metric": "fill_rate", "value": 0.5},
            ],
        ),
        "dq_results": table(
            "dq_results",
            [
                {
                    "table_name": "sales",
                    "rule": "non_negative",
                    "column_name": "quantity",
                    "level": "row",
                    "passed": False,
                    "observed": "2 negative values",
                    "observed_value": 2.0,
                    "failing_rows": 2,
                },
                {
                    "table_name": "items",
                    "rule": "unique_key",
                    "column_name": "sku",
                    "level": "table",
                    "passed": True,
                    "observed": "0 duplicates",
                    "observed_value": None,
                    "failing_rows": 0,
                },
            ],
        ),
        "quarantine": table(
            "quarantine",
            [
                {
                    "table_name": "sales",
                    "row_number": 3,
                    "rule": "non_negative",
                    "column_name": "quantity",
                    "value": "-4",
                    "row_json": "{}",
                },
                {
                    "table_name": "sales",
                    "row_number": 9,
                    "rule": "non_negative",
                    "column_name": "quantity",
                    "value": "-1",
                    "row_json": "{}",
                },
            ],
        ),
    }


@pytest.fixture()
def summary() -> dict:
    return {
        "run_date": "2026-11-25",
        "run_id": RUN_ID,
        "counts": {"extract": {"sales": 123, "stock": 40}, "transfers": {"transfers": 4}},
        "quarantined": 2,
        "notes": ["Lead time defaulted for 3 SKU-locations", f"note with {SCRIPT}"],
    }


@pytest.fixture()
def cfg(tmp_path: Path):
    return load_config(
        overrides={
            "staging_dir": str(tmp_path / "staging"),
            "output_dir": str(tmp_path / "output"),
            "email": {
                "sender": "tiaobo@example.com",
                "data_team": ["data@example.com"],
                "planners": [
                    {
                        "name": "east-food",
                        "recipients": ["east@example.com"],
                        "language": "en",
                        "categories": ["food", "drinks"],
                        "regions": ["east"],
                    },
                    {"name": "all-zh", "recipients": ["zh@example.com", "boss@example.com"], "language": "zh-CN"},
                ],
            },
        }
    )


# --------------------------------------------------------------------------------------------
# HTML parsing helpers
# --------------------------------------------------------------------------------------------


class Collector(HTMLParser):
    """Collects element ids, <script> tags, resource URLs and <img> sources of a document."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.ids: list[str] = []
        self.scripts = 0
        self.urls: list[str] = []
        self.imgs: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if a.get("id"):
            self.ids.append(str(a["id"]))
        if tag == "script":
            self.scripts += 1
        for key in ("src", "href"):
            if a.get(key):
                self.urls.append(str(a[key]))
        if tag == "img":
            self.imgs.append(str(a.get("src")))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(html: str) -> Collector:
    c = Collector()
    c.feed(html)
    c.close()
    return c


def section_text(html: str, section_id: str) -> str:
    start = html.index(f'<section id="{section_id}">')
    return html[start : html.index("</section>", start)]


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------


def test_report_has_every_section_and_is_self_contained(frames, summary, items, locations):
    html = render_report({**frames, "items": items, "locations": locations}, summary, "en")
    doc = parse(html)
    for sid in ("summary", "transfers", "alerts", "health", "data-quality", "forecast"):
        assert sid in doc.ids
    assert set(SECTION_IDS) <= set(doc.ids)
    # offline: no script, no http(s) resource, every image inline
    assert doc.scripts == 0
    assert not [u for u in doc.urls if u.lower().startswith(("http:", "https:", "//"))]
    assert "http://" not in html and "https://" not in html
    assert len(doc.imgs) == 5 and all(src.startswith("data:image/png;base64,") for src in doc.imgs)


def test_report_escapes_data_text_and_keeps_chinese(frames, summary, items, locations):
    html = render_report({**frames, "items": items, "locations": locations}, summary, "en")
    assert SCRIPT not in html
    assert "&lt;script&gt;" in html
    doc = parse(html)
    text = "".join(doc.text)
    assert SCRIPT in text  # shown to the reader as text
    assert "绿茶 500ml" in html and "上海仓" in html
    assert "将 60 件 S1" not in html  # English report shows English explanations
    assert "Move 120 units of S2 from DC1 to ST2." in section_text(html, "transfers")


def test_report_orders_transfers_and_alerts(frames, summary):
    html = render_report(frames, summary, "en")
    tr = section_text(html, "transfers")
    # planner tier first by net benefit: S2 (890) then S1 (490) then S3 (30), the auto one last
    order = [tr.index(s) for s in ("Move 120 units of S2", "Move 60 of", "=HYPERLINK", "Move 12 units of S2")]
    assert order == sorted(order)
    al = section_text(html, "alerts")
    # severity first, then value at risk: S2/ST3 high 1200, S1/ST1 high 300, medium 50, low 5000
    order = [al.index(s) for s in ("S2 at ST3", "S1 at ST1", "S2 at DC1", "S3 at ST2")]
    assert order == sorted(order)


def test_report_zh_cn_translates_headings_not_data(frames, summary, items, locations):
    html = render_report({**frames, "items": items, "locations": locations}, summary, "zh-CN")
    assert '<html lang="zh-CN">' in html
    assert "调拨建议" in html and "库存健康度" in html and "数据质量" in html
    assert "将 120 件 S2 从 DC1 调到 ST2。" in html
    assert "Stock health" not in html
    assert "&lt;script&gt;" in html and SCRIPT not in html


def test_report_review_section_lists_the_orders_and_flagged_lanes(frames, summary):
    from pipelines import explain

    run = date.fromisoformat(summary["run_date"])
    rev = transfer_review_rows(run).assign(run_id="r1")
    rev["explanation_en"], rev["explanation_zh"] = explain.review_sentences(rev)
    lanes = pd.DataFrame(
        {
            "run_date": pd.Timestamp(run),
            "run_id": "r1",
            "from_location": ["S2"],
            "to_location": ["S1"],
            "configured_transit_days": [2.0],
            "observed_transit_days": [3.5],
            "orders": [2],
            "flagged": [True],
        }
    )
    lanes["explanation_en"], lanes["explanation_zh"] = explain.lane_review_sentences(lanes)
    en = section_text(render_report({**frames, "transfer_review": rev, "lane_review": lanes}, summary, "en"), "review")
    assert en.count("<tr>") == 1 + len(rev) and "O1" in en and "partly received" in en
    assert rev["explanation_en"].iloc[0] in en and "3.5" in en  # the lane's observed transit is named
    zh = render_report({**frames, "transfer_review": rev, "lane_review": lanes}, summary, "zh-CN")
    assert "调拨复盘" in zh and rev["explanation_zh"].iloc[1] in section_text(zh, "review")
    empty = section_text(render_report(frames, summary, "en"), "review")
    assert "Nothing to report." in empty


def test_report_health_and_data_quality_numbers(frames, summary):
    html = render_report(frames, summary, "en")
    health = section_text(html, "health")
    assert 'Under-stocked</td><td class="n">2</td>' in health
    assert "40.0%" in health  # 2 of 5
    dq = section_text(html, "data-quality")
    assert "Not negative" in dq and "1 of 2 checks passed" in dq
    assert "<strong>2</strong>" in dq  # quarantined rows from the summary


def test_report_forecast_picks_the_five_largest(frames, summary):
    html = render_report(frames, summary, "en")
    fc = section_text(html, "forecast")
    assert "S1</span> · ST1" in fc and "S3</span> · ST2" in fc
    assert "S3</span> · ST3" not in fc  # sixth by volume
    # largest first: S1@ST1 has 28 days x 10 units plus four 10% bumps = 284 units
    assert fc.index("S1</span> · ST1") < fc.index("S2</span> · ST2") < fc.index("S1</span> · DC1")
    assert "Expected units over 28 days: 284.0" in fc
    assert fc.count("<img") == 5


def test_report_with_no_frames_at_all(summary):
    html = render_report({}, summary, "en")
    doc = parse(html)
    assert set(SECTION_IDS) <= set(doc.ids)
    assert html.count("Nothing to report.") >= 4


def test_write_report_atomic_names(tmp_path, frames, summary):
    en = write_report(frames, summary, tmp_path, "en")
    zh = write_report(frames, summary, tmp_path, "zh-CN")
    assert en.name == "report_2026-11-25.html" and zh.name == "report_2026-11-25.zh-CN.html"
    assert sorted(p.name for p in tmp_path.iterdir()) == [en.name, zh.name]  # no temp files left
    assert en.read_text(encoding="utf-8") == render_report(frames, summary, "en")  # deterministic


def test_report_caps_long_tables(frames, summary, monkeypatch):
    import pipelines.report as report

    monkeypatch.setattr(report, "MAX_REPORT_ROWS", 2)
    html = render_report(frames, summary, "en")
    assert "Showing the first 2 of 4 rows" in section_text(html, "transfers")
    assert "Showing the first 2 of 4 rows" in section_text(html, "alerts")
    assert "Move 12 units of S2" not in html  # the auto transfer sorts last and is cut


def test_report_folds_all_but_the_first_rows_of_a_long_table(frames, summary, monkeypatch):
    import pipelines.report as report

    monkeypatch.setattr(report, "FOLD_ROWS", 1)
    sec = section_text(render_report(frames, summary, "zh-CN"), "transfers")
    opened, folded = sec.split("<details", 1)
    assert opened.count("<tr>") == 2  # the header and the first transfer
    assert "展开其余 3 行" in folded and folded.count("<tr>") == 4  # the header again and three rows


def test_render_report_rejects_unknown_language(frames, summary):
    with pytest.raises(ValueError, match="unsupported language"):
        render_report(frames, summary, "fr")


# --------------------------------------------------------------------------------------------
# Digest
# --------------------------------------------------------------------------------------------


def test_group_filter_by_category_and_region(frames, items, locations):
    group = RecipientGroup(name="g", recipients=["a@example.com"], categories=["drinks"], regions=["west"])
    tr, al, warn = filter_for_group(frames["transfers"], frames["alerts"], group, locations, items)
    assert warn == []
    # drinks, touching the west by receiver or donor: S2 ST2->ST3 and S2 DC1(east)->ST2(west)
    assert sorted(zip(tr["sku"], tr["from_location"], tr["to_location"], strict=True)) == [
        ("S2", "DC1", "ST2"),
        ("S2", "ST2", "ST3"),
    ]
    assert list(zip(al["sku"], al["location"], strict=True)) == [("S2", "ST3")]


def test_group_filter_without_master_data_matches_nothing(frames):
    group = RecipientGroup(name="g", recipients=["a@example.com"], regions=["west"])
    tr, al, warn = filter_for_group(frames["transfers"], frames["alerts"], group, None, None)
    assert tr.empty and al.empty and warn == ["no_locations"]
    # categories fall back to inventory_policy when the item master is missing
    group = RecipientGroup(name="g", recipients=["a@example.com"], categories=["home"])
    tr, al, warn = filter_for_group(
        frames["transfers"], frames["alerts"], group, None, None, frames["inventory_policy"]
    )
    assert warn == [] and set(tr["sku"]) == {"S3"} and set(al["sku"]) == {"S3"}


def test_digest_filters_rows_and_attachments_open(frames, summary, cfg, items, locations):
    group = cfg.email.planners[0]  # food+drinks, east
    msg = build_digest(frames, summary, group, cfg, locations, items)
    assert msg["To"] == "east@example.com" and msg["From"] == "tiaobo@example.com"
    # planner transfers in scope: S1 DC1->ST1 (food, east), S2 DC1->ST2 (drinks, donor east); S3 is home.
    # alerts in scope: S1@ST1 high, S2@DC1 medium (S2@ST3 is west)
    assert msg["Subject"] == "[Tiaobo] 25 Nov 2026: 2 transfers need approval, 1 high alert"
    assert msg.get_content_type() == "multipart/mixed"
    alt = [p for p in msg.walk() if p.get_content_type() == "multipart/alternative"]
    assert len(alt) == 1
    text, html, files = message_parts(msg)
    assert "Move 120 units of S2 from DC1 to ST2." in html and "Move 120 units of S2" in text
    assert "=HYPERLINK" not in html  # S3 filtered out
    assert SCRIPT not in html and "&lt;script&gt;" in html
    assert SCRIPT in text  # plain text is not HTML, nothing to escape
    assert "Fill rate" in html and "97.0 %" in html  # named and shown as a planner reads them
    assert "set aside 2 row(s)" in html

    csvs = {k: v for k, v in files.items() if k.endswith(".csv")}
    assert set(csvs) == {
        "transfers_2026-11-25_east-food.csv",
        "alerts_2026-11-25_east-food.csv",
        "purchases_2026-11-25_east-food.csv",
    }
    for data in csvs.values():
        assert data.startswith(b"\xef\xbb\xbf")  # UTF-8 BOM for Excel
    tr = pd.read_csv(io.BytesIO(csvs["transfers_2026-11-25_east-food.csv"]), encoding="utf-8-sig")
    # all transfers in scope, the auto one too: S1 DC1->ST1, S2 DC1->ST2; S2 ST2->ST3 is west only
    assert sorted(zip(tr["SKU"], tr["To"], strict=True)) == [("S1", "ST1"), ("S2", "ST2")]
    assert set(tr["Item"]) == {SCRIPT, "绿茶 500ml"}
    assert set(tr["Arrives"]) == {"2026-11-27"}
    assert set(tr["Approval"]) <= {"Automatic", "Planner"}
    assert "explanation_en" not in tr.columns and "Explanation" in tr.columns
    al = pd.read_csv(io.BytesIO(csvs["alerts_2026-11-25_east-food.csv"]), encoding="utf-8-sig")
    assert sorted(zip(al["SKU"], al["Location"], strict=True)) == [("S1", "ST1"), ("S2", "DC1")]
    assert set(al["Severity"]) <= {"High", "Medium", "Low"}

    xlsx = files["tiaobo_2026-11-25_east-food.xlsx"]
    wb = openpyxl.load_workbook(io.BytesIO(xlsx))
    # one sheet per kind, the header frozen and filterable
    assert wb.sheetnames == [
        "Transfers",
        "Purchase proposals",
        "Stock-out risk",
        "Near expiry",
        "Excess stock",
        "Slow mover",
    ]
    for ws in wb.worksheets:
        assert ws.freeze_panes == "A2" and ws.auto_filter.ref == ws.dimensions
    sheets = pd.read_excel(io.BytesIO(xlsx), sheet_name=None, engine="openpyxl")
    assert len(sheets["Transfers"]) == 2 and sum(len(sheets[k]) for k in wb.sheetnames[2:]) == 2
    assert "绿茶 500ml" in set(sheets["Transfers"]["Item"])


def test_digest_zh_cn_subject_and_text(frames, summary, cfg, items, locations):
    group = cfg.email.planners[1]  # no filters, Chinese
    msg = build_digest(frames, summary, group, cfg, locations, items)
    assert msg["Subject"] == "[调拨] 2026年11月25日：3 条调拨待审批，2 条高风险预警"
    assert msg["To"] == "zh@example.com, boss@example.com"
    text, html, files = message_parts(msg)
    assert "待您审批的调拨" in html and "将 120 件 S2 从 DC1 调到 ST2。" in html
    assert "另有 1 条调拨已自动批准" in text
    tr = pd.read_csv(io.BytesIO(files["transfers_2026-11-25_all-zh.csv"]), encoding="utf-8-sig")
    assert len(tr) == 4
    # Chinese headers and words, whole pieces
    assert {"商品编码", "调出地点", "调入地点", "调拨数量(件)", "说明", "审批方式"} <= set(tr.columns)
    assert not [c for c in tr.columns if "_" in c]
    assert set(tr["审批方式"]) <= {"自动批准", "计划员审批"}
    assert (tr["调拨数量(件)"] == tr["调拨数量(件)"].round()).all()
    # formula-looking text stays text in the CSV and the workbook
    assert '\'=HYPERLINK("x")' in set(tr["说明"])
    wb = openpyxl.load_workbook(io.BytesIO(files["tiaobo_2026-11-25_all-zh.xlsx"]))
    assert wb.sheetnames == ["调拨建议", "采购建议", "缺货风险", "临期", "库存过量", "滞销"]
    ws = wb.worksheets[0]
    header = [c.value for c in ws[1]]
    col = header.index("说明")
    cells = [row[col] for row in ws.iter_rows(min_row=2)]
    hyper = [c for c in cells if str(c.value).startswith("=HYPERLINK")]
    assert len(hyper) == 1 and hyper[0].data_type == "s"


def test_digest_subject_singular_and_top_alerts_cap(frames, summary, cfg, items, locations):
    many = table("alerts", [alert("excess", "S1", f"L{i:02d}", "low", float(i)) for i in range(15)])
    frames = {**frames, "alerts": many, "transfers": frames["transfers"].iloc[[0]]}
    group = RecipientGroup(name="x", recipients=["x@example.com"])
    msg = build_digest(frames, summary, group, cfg, locations, items)
    assert msg["Subject"] == "[Tiaobo] 25 Nov 2026: 1 transfer needs approval, 0 high alerts"
    _, html, _ = message_parts(msg)
    alerts_html = html[html.index('id="alerts"') :]
    assert "L14" in alerts_html and "L05" in alerts_html and "L04" not in alerts_html  # top 10 by value


# --------------------------------------------------------------------------------------------
# Failure email and .eml delivery
# --------------------------------------------------------------------------------------------


def test_failure_email_escapes_examples(cfg):
    examples = pd.DataFrame({"sku": ["S1", SCRIPT], "quantity": [-4.0, None]})
    msg = build_failure_email(
        cfg,
        RUN_DATE,
        dag_id="tiaobo_nightly",
        task_id="validate",
        error="sales.quantity < 0 in 2 rows",
        where_to_look="var/staging/2026-11-25/quarantine.parquet",
        examples=examples,
    )
    assert msg["To"] == "data@example.com"
    assert msg["Subject"] == "[Tiaobo] FAILED 2026-11-25: tiaobo_nightly.validate"
    text, html, files = message_parts(msg)
    assert "sales.quantity &lt; 0 in 2 rows" in html and "&lt;script&gt;" in html and SCRIPT not in html
    assert "var/staging/2026-11-25/quarantine.parquet" in text
    back = pd.read_csv(io.BytesIO(files["failing_rows_2026-11-25_validate.csv"]), encoding="utf-8-sig")
    assert list(back["sku"]) == ["S1", SCRIPT]


def test_deliver_without_smtp_writes_a_parseable_eml(tmp_path, frames, summary, cfg, items, locations):
    msg = build_digest(frames, summary, cfg.email.planners[1], cfg, locations, items)
    out = deliver(msg, cfg, tmp_path)
    assert out["mode"] == "eml"
    path = Path(out["path"])
    assert path.parent == tmp_path and path.suffix == ".eml" and path.name.startswith("all-zh__")
    back = email.message_from_bytes(path.read_bytes(), policy=email_policy.default)
    assert isinstance(back, EmailMessage)
    assert back["Subject"] == "[调拨] 2026年11月25日：3 条调拨待审批，2 条高风险预警"
    text, html, files = message_parts(back)
    assert "将 120 件 S2 从 DC1 调到 ST2。" in html
    assert len(files) == 4  # transfers, alerts and purchases as CSV, and the workbook
    # written again: same name, overwritten (idempotent)
    assert deliver(msg, cfg, tmp_path)["path"] == out["path"]
    assert len(list(tmp_path.glob("*.eml"))) == 1


def test_send_failure_writes_into_the_run_date_folder(cfg):
    out = send_failure(cfg, RUN_DATE, dag_id="d", task_id="forecast", error="boom", where_to_look="logs")
    assert out["mode"] == "eml"
    assert Path(out["path"]).parent == Path(cfg.output_dir) / "2026-11-25"
    back = email.message_from_bytes(Path(out["path"]).read_bytes(), policy=email_policy.default)
    assert back["To"] == "data@example.com"
    assert not [p for p in back.walk() if p.get_filename()]  # no examples, no attachment


def test_notify_stage_reads_staging_and_writes_everything(cfg, frames, summary, items, locations):
    ctx = RunContext(cfg, RUN_DATE)
    for name, df in frames.items():
        ctx.write(name, df)
    ctx.write("items", items)
    ctx.write("locations", locations)
    ctx.write_json("summary", summary)
    result = notify_stage(ctx)
    assert result.counts == {"emails_sent": 0, "emails_written": 2, "emails_failed": 0}
    assert Path(result.paths["report"]).name == "report_2026-11-25.html"
    assert Path(result.paths["report_zh"]).name == "report_2026-11-25.zh-CN.html"
    html = Path(result.paths["report"]).read_text(encoding="utf-8")
    assert "上海仓" in html and "Lead time defaulted for 3 SKU-locations" in html
    for key in ("eml_east-food", "eml_all-zh"):
        assert Path(result.paths[key]).exists() and Path(result.paths[key]).parent == ctx.output_dir


def test_notify_stage_with_an_empty_run(cfg):
    ctx = RunContext(cfg, RUN_DATE)
    result = notify_stage(ctx)
    assert result.counts["emails_written"] == 2
    html = Path(result.paths["report"]).read_text(encoding="utf-8")
    assert "2026-11-25" in html and "Nothing to report." in html
    back = email.message_from_bytes(Path(result.paths["eml_all-zh"]).read_bytes(), policy=email_policy.default)
    assert back["Subject"] == "[调拨] 2026年11月25日：0 条调拨待审批，0 条高风险预警"


# --------------------------------------------------------------------------------------------
# KPI trends, forecast vs actual, inline digest charts, rebuilding the report from the database
# --------------------------------------------------------------------------------------------


def kpi_history(days: int = 5) -> pd.DataFrame:
    rows = []
    for i in range(days):
        d = pd.Timestamp(RUN_DATE) - pd.Timedelta(days=days - 1 - i)
        for metric, value in (
            ("inventory_value", 1000.0 + 10 * i),
            ("stockout_rate", 0.1 - 0.01 * i),
            ("band_compliance", None),
            ("not_a_trend_metric", 1.0),
        ):
            rows.append(
                {"run_date": d, "run_id": f"r{i}", "location": "*", "category": "*", "metric": metric, "value": value}
            )
        rows.append(
            {
                "run_date": d,
                "run_id": f"r{i}",
                "location": "ST1",
                "category": "*",
                "metric": "inventory_value",
                "value": 5.0,
            }
        )
    return contract.conform(pd.DataFrame(rows), "kpis")


def daily_sales() -> pd.DataFrame:
    days = pd.date_range(pd.Timestamp(RUN_DATE) - pd.Timedelta(days=30), periods=31, freq="D")
    return contract.conform(
        pd.DataFrame({"sku": "S1", "location": "ST1", "date": days, "quantity": 7.0, "returns": 0.0, "revenue": 0.0}),
        "sales",
    )


def test_report_kpi_trends_and_forecast_vs_actual(frames, summary):
    from pipelines.report import kpi_trends

    trends = kpi_trends(kpi_history(), RUN_DATE)
    # network rows only, metrics in TREND_METRICS order, all-null metrics left out
    assert [t["metric"] for t in trends] == ["inventory_value", "stockout_rate"]
    assert trends[0]["latest"] == 1040.0 and trends[0]["points"] == 5
    assert trends[0]["png"].startswith(b"\x89PNG") and kpi_trends(kpi_history(), RUN_DATE)[0]["png"] == trends[0]["png"]
    assert kpi_trends(kpi_history(), RUN_DATE - pd.Timedelta(days=3))[0]["latest"] == 1010.0  # no future rows

    html = render_report({**frames, "kpi_history": kpi_history(), "sales": daily_sales()}, summary, "en")
    sec = section_text(html, "kpi-trends")
    doc = parse(sec + "</section>")
    assert len(doc.imgs) == 2 and all(s.startswith("data:image/png;base64,") for s in doc.imgs)
    assert "Inventory value: <b>1,040" in sec and "not_a_trend_metric" not in sec and "inventory_value:" not in sec
    assert "units sold" in section_text(html, "forecast")  # the legend, in the page's language
    assert "actually sold over the 28 days" in section_text(html, "forecast")
    without = render_report(frames, summary, "en")
    assert "actually sold" not in without
    # the chart of S1 @ ST1 differs once actual sales are drawn on it
    png = [s for s in parse(html).imgs if s.startswith("data:")]
    assert set(png) - set(parse(without).imgs)
    zh = render_report({**frames, "kpi_history": kpi_history()}, summary, "zh-CN")
    assert "指标趋势" in section_text(zh, "kpi-trends")


def test_digest_shows_kpi_trends_inline_through_cid(frames, summary, cfg, items, locations):
    msg = build_digest(frames, summary, cfg.email.planners[0], cfg, locations, items, kpi_history())
    back = email.message_from_bytes(msg.as_bytes(), policy=email_policy.default)
    related = [p for p in back.walk() if p.get_content_type() == "multipart/related"]
    assert len(related) == 1
    html = back.get_body(preferencelist=("html",)).get_content()
    images = {p["Content-ID"].strip("<>"): p for p in back.walk() if p.get_content_type() == "image/png"}
    refs = [s.removeprefix("cid:") for s in parse(html).imgs]
    assert refs and sorted(refs) == sorted(images)
    assert refs[0] == "kpi-inventory_value.20261125@tiaobo"
    assert all(p.get_payload(decode=True).startswith(b"\x89PNG") for p in images.values())
    # attachments are still attachments, not inline parts
    names = sorted(p.get_filename() for p in back.iter_attachments())
    assert any(n.endswith(".xlsx") for n in names) and sum(n.endswith(".csv") for n in names) == 3
    # without any KPI rows: no images, no multipart/related, the digest is otherwise the same
    no_kpis = {k: v for k, v in frames.items() if k != "kpis"}
    plain = build_digest(no_kpis, summary, cfg.email.planners[0], cfg, locations, items)
    assert not [p for p in plain.walk() if p.get_content_type() in ("image/png", "multipart/related")]
    assert "cid:" not in plain.get_body(preferencelist=("html",)).get_content()


def test_report_command_rebuilds_the_report_from_the_reporting_database(cfg, frames, items, locations):
    from pipelines import reporting
    from pipelines.report import report_command

    url = cfg.reporting_url()
    hist = kpi_history()
    for i, d in enumerate(sorted(hist["run_date"].unique())):
        f = {name: df for name, df in frames.items() if name in contract.OUTPUT_TABLES}
        f = {name: df.assign(run_date=d, run_id=f"r{i}") for name, df in f.items()}
        f["kpis"] = hist[hist["run_date"] == d]
        reporting.publish(url, d.date(), f"r{i}", f)
    ctx = RunContext(cfg, RUN_DATE)
    ctx.write("items", items)
    ctx.write("locations", locations)
    paths = report_command(RUN_DATE.isoformat(), cfg)
    assert [p.name for p in paths] == ["report_2026-11-25.html", "report_2026-11-25.zh-CN.html"]
    html = paths[0].read_text(encoding="utf-8")
    doc = parse(html)
    assert set(SECTION_IDS) <= set(doc.ids)
    assert "(run r4)" in html and "(run r3)" not in html
    assert parse(section_text(html, "kpi-trends")).imgs and len(parse(section_text(html, "forecast")).imgs) == 5
    assert "矿泉水" in html or "ST1" in html
    assert not [u for u in doc.urls if u.lower().startswith(("http:", "https:", "//"))]
    with pytest.raises(LookupError, match="2026-11-26 is not published"):
        report_command("2026-11-26", cfg)
    reporting.dispose_engine(url)


def _visible_text(html: str) -> str:
    """The text a reader sees: no scripts, styles, tags or attributes, and no code cells (SKU and
    location codes are data, shown as they are)."""
    import re

    html = re.sub(r"<(script|style)\b.*?</\1>", " ", html, flags=re.S | re.I)
    html = re.sub(r'<td class="code">.*?</td>', " ", html, flags=re.S)
    return re.sub(r"<[^>]+>", " ", html)


def test_zh_cn_report_has_no_untranslated_identifier(frames, summary, items, locations):
    import re

    summary = {**summary, "counts": {"validate": {"sales": 10, "lead_times": 3}, "transfers": {"transfers": 2}}}
    html = render_report({**frames, "items": items, "locations": locations}, summary, "zh-CN")
    leftovers = sorted(set(re.findall(r"\b[a-z]+(?:_[a-z]+)+\b", _visible_text(html))))
    assert leftovers == [], f"untranslated identifiers in the zh-CN report: {leftovers}"


def test_zh_cn_digest_has_no_untranslated_identifier(frames, summary, cfg, items, locations):
    import re

    msg = build_digest(frames, summary, cfg.email.planners[1], cfg, locations, items)
    text, html, _ = message_parts(msg)
    for part, body in (("html", _visible_text(html)), ("text", text)):
        leftovers = sorted(set(re.findall(r"\b[a-z]+(?:_[a-z]+)+\b", body)))
        assert leftovers == [], f"untranslated identifiers in the zh-CN digest ({part}): {leftovers}"


def test_todays_actions_put_stockouts_first_and_name_the_covering_transfer(items, locations):
    from pipelines.report import TODAYS_ACTIONS, TODAYS_STOCKOUTS, todays_actions

    outs = [alert("stockout_risk", f"S{i:02d}", "ST-01", "high", float(i)) for i in range(30)]
    others = [alert("excess", f"E{i:02d}", "DC-01", "high", 1000.0 + i, action="transfer_out") for i in range(30)]
    alerts = pd.DataFrame(outs + others)
    transfers = pd.DataFrame(
        [
            transfer("S29", "DC-01", "ST-01", 8.0, "planner", 50.0),
            transfer("S29", "DC-02", "ST-01", 20.0, "planner", 90.0, arrival_date=pd.Timestamp("2026-11-28")),
        ]
    )
    rows = todays_actions(alerts, transfers, "en", items, locations)
    assert len(rows) == TODAYS_ACTIONS
    kinds = [r["alert_type"] for r in rows]
    # stock-outs first (by the margin they lose, largest first), capped, then the others by value
    assert kinds == ["stockout_risk"] * TODAYS_STOCKOUTS + ["excess"] * (TODAYS_ACTIONS - TODAYS_STOCKOUTS)
    assert [r["sku"] for r in rows[:3]] == ["S29", "S28", "S27"]
    assert rows[TODAYS_STOCKOUTS]["sku"] == "E29"
    # the largest planned transfer into the SKU and location is the action, with its arrival
    assert rows[0]["action_label"] == "Approve the transfer of 20 from DC-02 (arrives 28 Nov 2026)"
    assert rows[1]["action_label"] == "Expedite the order or transfer stock in"  # no planned transfer: its own action
    zh = todays_actions(alerts, transfers, "zh-CN", items, locations)
    assert zh[0]["action_label"] == "批准从 DC-02 调入 20 件(预计 2026年11月28日 到货)"
    assert todays_actions(alerts.iloc[0:0], transfers, "en", items, locations) == []


def test_report_and_digest_open_with_todays_actions(frames, summary, cfg, items, locations):
    html = render_report({**frames, "items": items, "locations": locations}, summary, "zh-CN")
    assert SECTION_IDS[0] == "today"
    assert html.index('id="today"') < html.index('id="summary"')
    assert "今日待办" in section_text(html, "today")
    group = cfg.email.planners[1]  # Chinese
    text, dhtml, _ = message_parts(build_digest(frames, summary, group, cfg, locations, items))
    assert text.index("== 今日待办 ==") < text.index("待您审批的调拨")
    assert dhtml.index('id="today"') < dhtml.index('id="transfers"')


def test_alerts_below_materiality_are_counted_in_the_report_and_digest(frames, summary, cfg, items, locations):
    noisy = {**summary, "alerts_below_materiality": {"near_expiry": {"alerts": 7, "value_at_risk": 31.5}}}
    html = render_report({**frames, "items": items, "locations": locations}, noisy, "zh-CN")
    assert "未列出：风险金额低于重要性门槛的预警 临期 7 条（合计 31.50）。" in section_text(html, "alerts")
    en = render_report({**frames, "items": items, "locations": locations}, noisy, "en")
    assert "at risk: 7 near expiry alert(s) (31.50 in all)." in section_text(en, "alerts")
    text, dhtml, _ = message_parts(build_digest(frames, noisy, cfg.email.planners[1], cfg, locations, items))
    assert "未列出" in text and "未列出" in dhtml
    assert "未列出" not in render_report({**frames, "items": items, "locations": locations}, summary, "zh-CN")


def test_money_is_shown_in_the_company_currency(frames, summary, cfg, items, locations):
    priced = {**summary, "currency": "CNY"}
    zh = render_report({**frames, "items": items, "locations": locations}, priced, "zh-CN")
    assert "风险金额（CNY）" in section_text(zh, "alerts") and "净收益（CNY）" in section_text(zh, "transfers")
    en = render_report({**frames, "items": items, "locations": locations}, priced, "en")
    assert "Value at risk (CNY)" in section_text(en, "alerts")
    assert "(CNY)" not in render_report({**frames, "items": items, "locations": locations}, summary, "en")
    # the digest takes the config's currency when the summary has none
    _, dhtml, _ = message_parts(build_digest(frames, summary, cfg.email.planners[1], cfg, locations, items))
    assert f"（{cfg.currency}）" in dhtml


def test_trend_charts_tick_the_real_run_dates():
    import numpy as np

    from pipelines.report import trend_ticks

    one = np.array(["2026-11-25"], dtype="datetime64[ns]")
    ticks, xlim = trend_ticks(one)
    assert ticks.tolist() == one.tolist()
    assert xlim == (np.datetime64("2026-11-22", "ns"), np.datetime64("2026-11-28", "ns"))
    five = np.array([f"2026-11-2{d}" for d in range(5, 10)], dtype="datetime64[ns]")
    assert trend_ticks(five[:3])[0].tolist() == five[:3].tolist() and trend_ticks(five[:3])[1] is None
    assert trend_ticks(five) == (None, None)


def _proposal(sku: str, loc: str, order_by: str, cost: float, late: bool, **kw) -> dict:
    row = {
        "run_date": pd.Timestamp(RUN_DATE),
        "run_id": RUN_ID,
        "sku": sku,
        "location": loc,
        "supplier": "华东乳业",
        "order_by": pd.Timestamp(order_by),
        "expected_receipt": pd.Timestamp(order_by) + pd.Timedelta(days=5),
        "quantity": 24.0,
        "unit_cost": cost / 24,
        "fixed_order_cost": 0.0,
        "cost": cost,
        "inventory_position": 3.0,
        "on_order": 0.0,
        "planned_transfers": 0.0,
        "reorder_point": 10.0,
        "order_up_to": 27.0,
        "moq": 24.0,
        "order_multiple": 12.0,
        "lead_time_days": 5.0,
        "runs_out_before_receipt": late,
        "explanation_en": f"Order 24 of {sku} at {loc}.",
        "explanation_zh": f"请订购 {sku} 24 件。",
        "approval_tier": "planner",
    }
    return {**row, **kw}


def test_report_lists_purchase_proposals_earliest_first_escaped_and_translated(frames, summary, items, locations):
    props = contract.conform(
        pd.DataFrame(
            [
                _proposal("S2", "ST2", "2026-11-27", 900.0, False, supplier=None),
                _proposal("S1", "DC1", "2026-11-25", 100.0, False),
                _proposal("S3", "ST3", "2026-11-25", 50.0, True, explanation_en=f"Buy {SCRIPT}"),
            ]
        ),
        "purchase_proposals",
    )
    both = {**frames, "purchase_proposals": props, "items": items, "locations": locations}
    html = render_report(both, summary, "en")
    text = section_text(html, "purchases")
    # the earliest order-by date first; on one date, what runs out before the receipt first
    assert text.index("S3") < text.index("S1") < text.index("S2")
    assert "none recorded" in text and "华东乳业" in text and "Buy &lt;script&gt;" in text and SCRIPT not in html
    zh = section_text(render_report(both, summary, "zh-CN"), "purchases")
    assert "采购建议" in zh and "请订购 S1 24 件。" in zh and "未记录" in zh and "Order 24" not in zh
    empty = section_text(render_report(frames, summary, "en"), "purchases")
    assert "Nothing to report." in empty


def test_digest_lists_the_groups_purchases_and_attaches_them(frames, summary, cfg, items, locations):
    props = contract.conform(
        pd.DataFrame(
            [
                _proposal("S1", "ST1", "2026-11-25", 100.0, True),  # food, east: in scope
                _proposal("S1", "ST3", "2026-11-25", 70.0, False),  # west: out of the east group
                _proposal("S3", "ST1", "2026-11-26", 50.0, False),  # home: out of the food group
            ]
        ),
        "purchase_proposals",
    )
    both = {**frames, "purchase_proposals": props}
    text, html, files = message_parts(build_digest(both, summary, cfg.email.planners[0], cfg, locations, items))
    assert "Purchases to place (1)" in html and "1 purchase proposal(s) worth" in html and "1 run out" in text
    assert "Order 24 of S1 at ST1." in html and "S3" not in text.split("Purchases to place")[1].split("==")[1]
    px = pd.read_csv(io.BytesIO(files["purchases_2026-11-25_east-food.csv"]), encoding="utf-8-sig")
    assert px[["SKU", "Location", "Supplier", "Units to order"]].values.tolist() == [["S1", "ST1", "华东乳业", 24]]
    assert px["Runs out before receipt"].tolist() == ["yes"]
    _, html_zh, files_zh = message_parts(build_digest(both, summary, cfg.email.planners[1], cfg, locations, items))
    assert "待下的采购单 (3)" in html_zh and "请订购 S3 24 件。" in html_zh
    zh = pd.read_csv(io.BytesIO(files_zh["purchases_2026-11-25_all-zh.csv"]), encoding="utf-8-sig")
    assert {"商品编码", "供应商", "下单日期", "采购数量(件)", "订单金额", "到货前缺货"} <= set(zh.columns)
    assert sorted(zh["到货前缺货"]) == ["否", "否", "是"]
