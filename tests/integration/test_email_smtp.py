"""Emails through a real SMTP server (aiosmtpd on 127.0.0.1, started per test; nothing mocked).

aiosmtpd is a dev dependency that runs in-process, so these tests never skip.
"""

from __future__ import annotations

import email
import io
import socket
from datetime import date
from email import policy as email_policy
from email.message import Message
from pathlib import Path

import openpyxl
import pandas as pd
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from pipelines import contract
from pipelines.config import load_config
from pipelines.context import RunContext
from pipelines.notify import build_digest, build_failure_email, deliver, notify_stage
from tests.factories import message_parts, table, transfer

pytestmark = pytest.mark.integration

RUN_DATE = date(2026, 11, 25)
RUN_ID = "20261125-abc"


def email_transfer(sku: str, frm: str, to: str, qty: float, tier: str) -> dict:
    """A transfers row costing 12.5, worth 4 a unit, from a donor with 70 days of cover."""
    return transfer(sku, frm, to, qty, tier, qty * 4, 12.5, donor_days_of_cover=70.0, donor_excess_units=qty)


BACKOFF = 0.01


class Store:
    """aiosmtpd handler that keeps every envelope it accepts."""

    def __init__(self) -> None:
        self.envelopes: list = []

    async def handle_DATA(self, server, session, envelope):  # aiosmtpd's hook name
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture()
def smtp_server():
    """A running SMTP server: (handler with .envelopes, port)."""
    handler = Store()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield handler, controller.port
    finally:
        controller.stop()


@pytest.fixture()
def auth_smtp_server():
    """An SMTP server that requires AUTH (user 'planner', password 's3cret'), plain text allowed."""

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = isinstance(auth_data, LoginPassword) and auth_data.login == b"planner" and auth_data.password == b"s3cret"
        return AuthResult(success=ok)

    handler = Store()
    controller = Controller(
        handler,
        hostname="127.0.0.1",
        port=free_port(),
        authenticator=authenticator,
        auth_required=True,
        auth_require_tls=False,
    )
    controller.start()
    try:
        yield handler, controller.port
    finally:
        controller.stop()


def config(tmp_path: Path, port: int, retries: int = 1, host: str | None = "127.0.0.1", backoff: float = 2.0):
    return load_config(
        overrides={
            "staging_dir": str(tmp_path / "staging"),
            "output_dir": str(tmp_path / "output"),
            "email": {
                "sender": "tiaobo@example.com",
                "smtp_host": host,
                "smtp_port": port,
                "smtp_retry_backoff_seconds": backoff,
                "smtp_timeout_seconds": 5,
                "smtp_retries": retries,
                "data_team": ["data@example.com", "oncall@example.com"],
                "planners": [
                    {"name": "east", "recipients": ["east@example.com"], "language": "en", "regions": ["east"]},
                    {"name": "zh", "recipients": ["zh1@example.com", "zh2@example.com"], "language": "zh-CN"},
                ],
            },
        }
    )


@pytest.fixture()
def run_frames():
    frames = {
        "transfers": table(
            "transfers",
            [
                email_transfer("S1", "DC1", "ST1", 60, "planner"),
                email_transfer("S2", "ST2", "ST3", 12, "planner"),
                email_transfer("S2", "DC1", "ST1", 6, "auto"),
            ],
            run_id=RUN_ID,
        ),
        "alerts": table(
            "alerts",
            [
                {
                    "alert_type": "stockout_risk",
                    "sku": "S1",
                    "location": "ST1",
                    "lot": "",
                    "severity": "high",
                    "units": 30.0,
                    "value_at_risk": 900.0,
                    "event_date": pd.Timestamp("2026-11-28"),
                    "action": "transfer_in",
                    "explanation_en": "S1 runs out at ST1 on 2026-11-28.",
                    "explanation_zh": "S1 将于 2026-11-28 在 ST1 断货。",
                    "plan_units": 0.0,
                    "plan_locations": "",
                    "plan_reason": "not_worth_it",
                }
            ],
            run_id=RUN_ID,
        ),
    }
    items = contract.conform(
        pd.DataFrame(
            {
                "sku": ["S1", "S2"],
                "name": ["矿泉水 <1L>", "绿茶"],
                "name_en": [None, None],
                "category": ["drinks", "drinks"],
                "unit_cost": [1.0, 2.0],
                "unit_price": [2.0, 4.0],
                "pack_size": [6, 6],
                "shelf_life_days": [None, None],
                "abc_override": [None, None],
                "active": [True, True],
            }
        ),
        "items",
    )
    locations = contract.conform(
        pd.DataFrame(
            {
                "location": ["DC1", "ST1", "ST2", "ST3"],
                "name": ["上海仓", "南京店", "成都店", "重庆店"],
                "type": ["dc", "store", "store", "store"],
                "region": ["east", "east", "west", "west"],
                "can_ship": [True] * 4,
                "can_receive": [True] * 4,
                "active": [True] * 4,
            }
        ),
        "locations",
    )
    summary = {"run_date": "2026-11-25", "run_id": "20261125-abc", "counts": {}, "quarantined": 3, "notes": []}
    return frames, summary, items, locations


def received(envelope) -> Message:
    return email.message_from_bytes(envelope.content, policy=email_policy.default)


def test_digest_arrives_with_recipients_subject_html_and_attachments(tmp_path, smtp_server, run_frames):
    handler, port = smtp_server
    cfg = config(tmp_path, port)
    frames, summary, items, locations = run_frames
    msg = build_digest(frames, summary, cfg.email.planners[1], cfg, locations, items)
    out = deliver(msg, cfg, tmp_path / "out", backoff_seconds=BACKOFF)
    assert out["mode"] == "smtp" and out["attempts"] == 1 and out["refused"] == {}
    assert not (tmp_path / "out").exists()  # sent, nothing written

    assert len(handler.envelopes) == 1
    env = handler.envelopes[0]
    assert env.mail_from == "tiaobo@example.com"
    assert env.rcpt_tos == ["zh1@example.com", "zh2@example.com"]
    got = received(env)
    assert got["Subject"] == "[调拨] 2026年11月25日：2 条调拨待审批，1 条高风险预警"
    assert got["Date"] and got["Message-ID"]
    text, html, files = message_parts(got)
    assert "将 60 件 S1 从 DC1 调到 ST1。" in html and "将 12 件 S2 从 ST2 调到 ST3。" in html
    assert "矿泉水 &lt;1L&gt;" in html and "矿泉水 <1L>" in text
    assert "另有 1 条调拨已自动批准" in text

    tr = pd.read_csv(io.BytesIO(files["transfers_2026-11-25_zh.csv"]), encoding="utf-8-sig")
    assert len(tr) == 3 and set(tr["商品名称"]) == {"矿泉水 <1L>", "绿茶"}
    al = pd.read_csv(io.BytesIO(files["alerts_2026-11-25_zh.csv"]), encoding="utf-8-sig")
    assert list(al["风险金额"]) == [900.0] and list(al["调拨计划情况"]) == ["调拨不划算"]
    wb = openpyxl.load_workbook(io.BytesIO(files["tiaobo_2026-11-25_zh.xlsx"]))
    assert wb.sheetnames == ["调拨建议", "采购建议", "缺货风险", "临期", "库存过量", "滞销"]
    assert wb["调拨建议"].max_row == 4 and wb["采购建议"].max_row == 1  # no purchase proposals: the header only
    assert wb["缺货风险"].max_row == 2


def test_failure_email_arrives_for_the_data_team(tmp_path, smtp_server):
    handler, port = smtp_server
    cfg = config(tmp_path, port)
    examples = pd.DataFrame({"sku": ["S9", "<b>S10</b>"], "quantity": [-3.0, -1.0]})
    msg = build_failure_email(
        cfg,
        RUN_DATE,
        dag_id="tiaobo_nightly",
        task_id="validate",
        error="rule quantity_non_negative failed",
        where_to_look="var/staging/2026-11-25/quarantine.parquet",
        examples=examples,
    )
    out = deliver(msg, cfg, tmp_path / "out", backoff_seconds=BACKOFF)
    assert out["mode"] == "smtp"
    env = handler.envelopes[0]
    assert env.rcpt_tos == ["data@example.com", "oncall@example.com"]
    got = received(env)
    assert got["Subject"] == "[Tiaobo] FAILED 2026-11-25: tiaobo_nightly.validate"
    text, html, files = message_parts(got)
    assert "rule quantity_non_negative failed" in html and "&lt;b&gt;S10&lt;/b&gt;" in html
    assert "var/staging/2026-11-25/quarantine.parquet" in text
    back = pd.read_csv(io.BytesIO(files["failing_rows_2026-11-25_validate.csv"]), encoding="utf-8-sig")
    assert list(back["sku"]) == ["S9", "<b>S10</b>"]


def test_notify_stage_sends_one_digest_per_group(tmp_path, smtp_server, run_frames):
    handler, port = smtp_server
    cfg = config(tmp_path, port)
    frames, summary, items, locations = run_frames
    ctx = RunContext(cfg, RUN_DATE)
    ctx.write("items", items)
    ctx.write("locations", locations)
    result = notify_stage(ctx, frames=frames, summary=summary)
    assert result.counts == {"emails_sent": 2, "emails_written": 0, "emails_failed": 0}
    assert Path(result.paths["report"]).exists() and Path(result.paths["report_zh"]).exists()
    by_rcpt = {tuple(e.rcpt_tos): received(e) for e in handler.envelopes}
    east = by_rcpt[("east@example.com",)]
    # the east group sees transfers touching the east (S1 DC1->ST1, auto S2 DC1->ST1), not ST2->ST3
    assert east["Subject"] == "[Tiaobo] 25 Nov 2026: 1 transfer needs approval, 1 high alert"
    _, html, files = message_parts(east)
    assert "Move 60 units of S1" in html and "ST2 to ST3" not in html
    assert len(pd.read_csv(io.BytesIO(files["transfers_2026-11-25_east.csv"]), encoding="utf-8-sig")) == 2


def test_smtp_down_keeps_the_message_on_disk(tmp_path, run_frames):
    cfg = config(tmp_path, free_port(), retries=2)  # nothing listens there
    frames, summary, items, locations = run_frames
    msg = build_digest(frames, summary, cfg.email.planners[0], cfg, locations, items)
    out = deliver(msg, cfg, tmp_path / "out", backoff_seconds=BACKOFF)
    assert out["mode"] == "failed" and out["attempts"] == 3
    assert "Connection" in out["error"] or "refused" in out["error"].lower()
    path = Path(out["path"])
    assert path.exists() and path.parent == tmp_path / "out"
    back = email.message_from_bytes(path.read_bytes(), policy=email_policy.default)
    assert back["To"] == "east@example.com"
    assert back["Subject"] == "[Tiaobo] 25 Nov 2026: 1 transfer needs approval, 1 high alert"


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_smtp_auth_uses_environment_credentials(tmp_path, auth_smtp_server, run_frames, monkeypatch):
    handler, port = auth_smtp_server
    cfg = config(tmp_path, port, retries=3)
    frames, summary, items, locations = run_frames
    monkeypatch.delenv("TIAOBO_SMTP_USER", raising=False)
    monkeypatch.delenv("TIAOBO_SMTP_PASSWORD", raising=False)
    msg = build_digest(frames, summary, cfg.email.planners[0], cfg, locations, items)
    refused = deliver(msg, cfg, tmp_path / "out", backoff_seconds=BACKOFF)
    # "530 authentication required" is permanent: no retries, the message is kept on disk
    assert refused["mode"] == "failed" and refused["attempts"] == 1 and Path(refused["path"]).exists()
    assert handler.envelopes == []

    monkeypatch.setenv("TIAOBO_SMTP_USER", "planner")
    monkeypatch.setenv("TIAOBO_SMTP_PASSWORD", "s3cret")
    sent = deliver(msg, cfg, tmp_path / "out", backoff_seconds=BACKOFF)
    assert sent["mode"] == "smtp"
    assert [e.rcpt_tos for e in handler.envelopes] == [["east@example.com"]]


def test_smtp_down_notify_keeps_results_published_and_records_it_in_the_run_log(tmp_path, run_frames):
    from pipelines import reporting

    cfg = config(tmp_path, free_port(), retries=1, backoff=BACKOFF)  # nothing listens there
    frames, summary, items, locations = run_frames
    url = cfg.reporting_url()
    reporting.publish(url, RUN_DATE, "20261125-abc", frames)
    ctx = RunContext(cfg, RUN_DATE)
    ctx.write_json("run", {"run_id": "20261125-abc"})
    ctx.write("items", items)
    ctx.write("locations", locations)
    result = notify_stage(ctx, frames=frames, summary=summary)
    assert result.counts == {"emails_sent": 0, "emails_written": 0, "emails_failed": 2}
    assert all(Path(result.paths[f"eml_{g}"]).exists() for g in ("east", "zh"))
    log_ = reporting.read_run_log(url, RUN_DATE)
    failed = log_[log_["status"] == "email_failed"]
    assert len(failed) == 1 and failed["stage"].iloc[0] == "notify" and failed["run_id"].iloc[0] == "20261125-abc"
    msg = failed["message"].iloc[0]
    assert "2 digest(s) not delivered; results are published" in msg and "digest for east not delivered" in msg
    assert '"emails_failed": 2' in failed["counts_json"].iloc[0]
    # the published results are untouched
    assert len(reporting.read_table(url, "transfers", RUN_DATE)) == 3
    reporting.dispose_engine(url)


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_smtp_host_and_credentials_from_an_airflow_connection(tmp_path, auth_smtp_server, run_frames, monkeypatch):
    import json

    from pipelines.notify import smtp_settings

    handler, port = auth_smtp_server
    cfg = load_config(
        overrides={
            "staging_dir": str(tmp_path / "staging"),
            "output_dir": str(tmp_path / "output"),
            "email": {
                "sender": "tiaobo@example.com",
                "smtp_conn_id": "tiaobo_smtp_test",
                "smtp_retries": 0,
                "planners": [{"name": "east", "recipients": ["east@example.com"], "language": "en"}],
            },
        }
    )
    frames, summary, items, locations = run_frames
    msg = build_digest(frames, summary, cfg.email.planners[0], cfg, locations, items)
    monkeypatch.delenv("AIRFLOW_CONN_TIAOBO_SMTP_TEST", raising=False)
    missing = deliver(msg, cfg, tmp_path / "out", backoff_seconds=BACKOFF)
    assert missing["mode"] == "failed" and "tiaobo_smtp_test" in missing["error"] and Path(missing["path"]).exists()

    conn = {
        "conn_type": "smtp",
        "host": "127.0.0.1",
        "port": port,
        "login": "planner",
        "password": "s3cret",
        "extra": {"starttls": False},
    }
    monkeypatch.setenv("AIRFLOW_CONN_TIAOBO_SMTP_TEST", json.dumps(conn))
    monkeypatch.delenv("TIAOBO_SMTP_USER", raising=False)
    monkeypatch.delenv("TIAOBO_SMTP_PASSWORD", raising=False)
    settings = smtp_settings(cfg)
    assert settings is not None and (settings.host, settings.port, settings.user) == ("127.0.0.1", port, "planner")
    assert "s3cret" not in repr(settings)
    sent = deliver(msg, cfg, tmp_path / "out", backoff_seconds=BACKOFF)
    assert sent["mode"] == "smtp" and [e.rcpt_tos for e in handler.envelopes] == [["east@example.com"]]


def test_smtp_host_and_port_from_the_environment(tmp_path, smtp_server, run_frames, monkeypatch):
    handler, port = smtp_server
    cfg = config(tmp_path, 1, host=None)  # no host configured, a wrong port: the environment wins
    monkeypatch.setenv("TIAOBO_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("TIAOBO_SMTP_PORT", str(port))
    frames, summary, items, locations = run_frames
    msg = build_digest(frames, summary, cfg.email.planners[1], cfg, locations, items)
    assert deliver(msg, cfg, tmp_path / "out", backoff_seconds=BACKOFF)["mode"] == "smtp"
    assert [sorted(e.rcpt_tos) for e in handler.envelopes] == [["zh1@example.com", "zh2@example.com"]]


def test_digest_with_inline_kpi_charts_arrives_intact(tmp_path, smtp_server, run_frames):
    handler, port = smtp_server
    cfg = config(tmp_path, port)
    frames, summary, items, locations = run_frames
    history = contract.conform(
        pd.DataFrame(
            {
                "run_date": pd.date_range("2026-11-20", "2026-11-25", freq="D"),
                "run_id": "r",
                "location": "*",
                "category": "*",
                "metric": "inventory_value",
                "value": [5.0, 6.0, 7.0, 6.5, 8.0, 9.0],
            }
        ),
        "kpis",
    )
    msg = build_digest(frames, summary, cfg.email.planners[1], cfg, locations, items, history)
    assert deliver(msg, cfg, tmp_path / "out", backoff_seconds=BACKOFF)["mode"] == "smtp"
    got = received(handler.envelopes[0])
    html = got.get_body(preferencelist=("html",)).get_content()
    images = [p for p in got.walk() if p.get_content_type() == "image/png"]
    assert len(images) == 1 and images[0].get_payload(decode=True).startswith(b"\x89PNG")
    assert f'src="cid:{images[0]["Content-ID"].strip("<>")}"' in html
    assert "指标趋势" in html  # the zh-CN group


def test_a_server_that_greets_for_ever_cannot_hold_a_message(tmp_path):
    """Each greeting line arrives well within the per-read timeout, so only a limit on the whole
    conversation (email.smtp_total_seconds) ends it; the message is kept on disk."""
    import socket
    import threading
    import time

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]
    stop = threading.Event()

    def greet_for_ever() -> None:
        conn, _ = listener.accept()
        with conn:
            while not stop.is_set():
                try:
                    conn.sendall(b"220-welcome, still welcoming\r\n")
                except OSError:
                    return
                time.sleep(0.05)

    t = threading.Thread(target=greet_for_ever, daemon=True)
    t.start()
    cfg = config(tmp_path, port, retries=0)
    cfg = cfg.model_copy(update={"email": cfg.email.model_copy(update={"smtp_total_seconds": 1.5})})
    msg = build_failure_email(
        cfg, RUN_DATE, dag_id="tiaobo_nightly", task_id="load", error="boom", where_to_look="the run log"
    )
    t0 = time.monotonic()
    out = deliver(msg, cfg, tmp_path / "out", backoff_seconds=BACKOFF)
    took = time.monotonic() - t0
    stop.set()
    listener.close()
    assert out["mode"] == "failed" and took < 5
    assert f"127.0.0.1:{port} kept the message longer than 1.5 s" in out["error"]
    assert Path(out["path"]).exists()
