"""The notify stage: the planner report, the morning digest emails and the data-team failure email.

- :func:`build_digest` makes one HTML email (``multipart/alternative`` with a plain-text part) per
  planner group, filtered to the group's categories and regions, with the full lists attached as
  CSV (UTF-8 with BOM, so Excel shows Chinese correctly) and one ``.xlsx`` workbook.
- :func:`build_failure_email` tells the data team which task failed, the error or rule, example
  failing rows and where to look.
- :func:`deliver` sends through SMTP with retries, or writes an ``.eml`` file when no SMTP host is
  configured. It never raises and never loses a message: when every attempt fails the message is
  written to disk and the result says ``mode: failed``.
- :func:`notify_stage` is the pipeline stage (reads the run's staging folder, writes the reports
  into the output folder, delivers one digest per group); :func:`send_failure` is what the DAG's
  failure callback calls.

Messages are built deterministically from the run's frames (no Date or Message-ID at build time);
:func:`deliver` stamps ``Date`` and ``Message-ID`` only when it hands a message to an SMTP server.
All data text goes through Jinja2 with autoescape on (HTML parts); attachments are defused
against spreadsheet formula injection (text cells starting with ``= + - @`` are kept as text).

SMTP server and credentials: :func:`smtp_settings` (the Airflow connection ``email.smtp_conn_id``,
or the config with ``TIAOBO_SMTP_*`` environment overrides). When a digest cannot be delivered
after the retries, the published results stay published, the message is kept as ``.eml``, the
failure is logged, and :func:`notify_stage` records it in the run log as an attempt with status
``email_failed`` (stage ``notify``) naming the groups, the error and the kept files.

Limits: the body of the digest lists
at most :data:`DIGEST_MAX_TRANSFERS` transfers needing approval and the top
:data:`DIGEST_TOP_ALERTS` alerts, the attachments carry everything.
"""

from __future__ import annotations

import base64
import io
import logging
import os
import re
import smtplib
import ssl
import time
import unicodedata
from dataclasses import dataclass
from datetime import date
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Any

import pandas as pd

from pipelines import contract
from pipelines.config import Config, RecipientGroup
from pipelines.context import RunContext, StageResult
from pipelines.labels import day as locale_day
from pipelines.labels import long_day, metric_value
from pipelines.labels import metric as metric_label
from pipelines.report import (
    alert_rows,
    frame,
    item_names,
    kpi_trends,
    labels,
    location_names,
    network_kpis,
    noise_line,
    purchase_rows,
    quarantined_count,
    run_date_of,
    sort_alerts,
    sort_purchases,
    sort_transfers,
    todays_actions,
    transfer_rows,
    write_report,
)
from pipelines.report import env as jinja_env

log = logging.getLogger(__name__)

DIGEST_MAX_TRANSFERS = 25
DIGEST_MAX_PURCHASES = 10
DIGEST_TOP_ALERTS = 10
FAILURE_EXAMPLE_ROWS = 20
FAILURE_ATTACH_MAX_ROWS = 10_000
DEFAULT_SMTP_BACKOFF_SECONDS = 2.0
MAX_SMTP_BACKOFF_SECONDS = 60.0
XLSX_MIME = ("application", "vnd.openxmlformats-officedocument.spreadsheetml.sheet")
GROUP_HEADER = "X-Tiaobo-Group"
RUN_DATE_HEADER = "X-Tiaobo-Run-Date"

_DIGEST_TEXT: dict[str, dict[str, str]] = {
    "en": {
        "heading": "Tiaobo morning digest",
        "group": "Planner group",
        "need_approval": "Transfers needing your approval",
        "auto_count": "{n} further transfer(s) were approved automatically (small enough for the policy limits).",
        "more_transfers": "{n} more transfer(s) needing approval are in the attachments.",
        "top_alerts": "Top {n} alerts by value at risk",
        "alerts_count": "{n} alert(s) in total, {h} of high severity.",
        "quarantined_line": "Validation set aside {n} row(s) of input data; see the data-quality section of the report.",
        "attachments": "Attached: the full transfer, purchase and alert lists as CSV and as one Excel workbook.",
        "purchases": "Purchases to place",
        "purchases_line": "{n} purchase proposal(s) worth {v}; {late} run out before the goods arrive. The"
        " earliest are below, the full list is attached.",
        "report_hint": "The full report is report_{date}.html in the run's output folder.",
        "workbench_hint": "Review and decide in the workbench: {url}",
        "warnings": "Warnings",
        "no_items": "The item master was not available, so the category filter could not be applied: category-filtered lists are empty.",
        "no_locations": "The location master was not available, so the region filter could not be applied: region-filtered lists are empty.",
        "filters": "Filtered to categories: {categories}; regions: {regions}.",
        "all": "all",
        "subject": "[Tiaobo] {date}: {n} {transfers} approval, {h} high {alerts}",
    },
    "zh-CN": {
        "heading": "调拨每日摘要",
        "group": "计划员组",
        "need_approval": "待您审批的调拨",
        "auto_count": "另有 {n} 条调拨已自动批准（在策略限额之内）。",
        "more_transfers": "另有 {n} 条待审批调拨见附件。",
        "top_alerts": "风险金额最高的 {n} 条预警",
        "alerts_count": "共 {n} 条预警，其中高风险 {h} 条。",
        "quarantined_line": "数据校验隔离了 {n} 行输入数据，详见报告的数据质量部分。",
        "attachments": "附件：完整的调拨、采购和预警列表（CSV 与 Excel 工作簿）。",
        "purchases": "待下的采购单",
        "purchases_line": "共 {n} 条采购建议，金额 {v}；其中 {late} 条到货前会缺货。以下为最早需下单的几条，完整列表见附件。",
        "report_hint": "完整报告为本次运行输出目录中的 report_{date}.zh-CN.html。",
        "workbench_hint": "请在工作台审阅并决定：{url}",
        "warnings": "提示",
        "no_items": "商品主数据不可用，无法按品类筛选：按品类筛选的列表为空。",
        "no_locations": "地点主数据不可用，无法按区域筛选：按区域筛选的列表为空。",
        "filters": "筛选品类：{categories}；区域：{regions}。",
        "all": "全部",
        "subject": "[调拨] {date}：{n} 条调拨待审批，{h} 条高风险预警",
    },
}


# --------------------------------------------------------------------------------------------
# Group filters
# --------------------------------------------------------------------------------------------


def _category_map(items: pd.DataFrame | None, policy: pd.DataFrame | None) -> pd.Series | None:
    """sku -> category from the item master, else from the inventory_policy rows; None if neither."""
    for df in (items, policy):
        if df is not None and not df.empty and {"sku", "category"} <= set(df.columns):
            return (
                pd.Series(df["category"].astype("str").to_numpy(), index=df["sku"].astype("str").to_numpy())
                .groupby(level=0)
                .first()
            )
    return None


def _region_map(locations: pd.DataFrame | None) -> pd.Series | None:
    if locations is None or locations.empty or not {"location", "region"} <= set(locations.columns):
        return None
    return (
        pd.Series(locations["region"].astype("str").to_numpy(), index=locations["location"].astype("str").to_numpy())
        .groupby(level=0)
        .first()
    )


def filter_purchases(
    purchases: pd.DataFrame,
    group: RecipientGroup,
    locations: pd.DataFrame | None,
    items: pd.DataFrame | None,
    policy: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The purchase proposals a planner group sees: the SKU's category is one of the group's and the
    delivery location is in one of its regions (empty lists: no filter; missing master data: none,
    as :func:`filter_for_group` does)."""
    keep = pd.Series(True, index=purchases.index)
    if group.categories:
        cats = _category_map(items, policy)
        keep &= False if cats is None else purchases["sku"].map(cats).isin(set(group.categories))
    if group.regions:
        regions = _region_map(locations)
        keep &= False if regions is None else purchases["location"].map(regions).isin(set(group.regions))
    return purchases[keep].reset_index(drop=True)


def filter_for_group(
    transfers: pd.DataFrame,
    alerts: pd.DataFrame,
    group: RecipientGroup,
    locations: pd.DataFrame | None,
    items: pd.DataFrame | None,
    policy: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """The transfers and alerts a planner group sees, and warnings about filters that could not apply.

    Categories: the SKU's category (item master, else inventory_policy) is one of the group's.
    Regions: an alert's location is in one of the group's regions; a transfer matches when its
    receiver or its donor is. Empty lists in the group mean no filter. A filter whose master
    data is missing matches nothing (a warning says so) rather than sending everything.
    """
    warnings: list[str] = []
    t_keep = pd.Series(True, index=transfers.index)
    a_keep = pd.Series(True, index=alerts.index)
    if group.categories:
        cats = _category_map(items, policy)
        if cats is None:
            warnings.append("no_items")
            t_keep &= False
            a_keep &= False
        else:
            wanted = set(group.categories)
            t_keep &= transfers["sku"].map(cats).isin(wanted)
            a_keep &= alerts["sku"].map(cats).isin(wanted)
    if group.regions:
        regions = _region_map(locations)
        if regions is None:
            warnings.append("no_locations")
            t_keep &= False
            a_keep &= False
        else:
            wanted = set(group.regions)
            t_keep &= transfers["to_location"].map(regions).isin(wanted) | transfers["from_location"].map(regions).isin(
                wanted
            )
            a_keep &= alerts["location"].map(regions).isin(wanted)
    return transfers[t_keep].reset_index(drop=True), alerts[a_keep].reset_index(drop=True), warnings


# --------------------------------------------------------------------------------------------
# Attachments
# --------------------------------------------------------------------------------------------

_FORMULA_START = re.compile(r"^[=+\-@\t\r]")
_XLSX_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def _text_columns(df: pd.DataFrame) -> list[str]:
    return [c for c in df.columns if pd.api.types.is_string_dtype(df[c]) or df[c].dtype == object]


#: attachment columns per kind, in order (the explanation is the reader's language)
EXPORT_COLUMNS: dict[str, list[str]] = {
    "transfers": [
        "run_date",
        "sku",
        "item_name",
        "from_location",
        "from_name",
        "to_location",
        "to_name",
        "quantity",
        "packs",
        "transfer_cost",
        "expected_benefit",
        "net_benefit",
        "receiver_stockout_date",
        "receiver_units_short",
        "donor_days_of_cover",
        "donor_excess_units",
        "arrival_date",
        "approval_tier",
        "method",
        "explanation",
        "run_id",
    ],
    "alerts": [
        "run_date",
        "severity",
        "alert_type",
        "sku",
        "item_name",
        "location",
        "location_name",
        "lot",
        "units",
        "value_at_risk",
        "event_date",
        "action",
        "plan_reason",
        "plan_units",
        "plan_locations",
        "explanation",
        "run_id",
    ],
    "purchases": [
        "run_date",
        "sku",
        "item_name",
        "location",
        "location_name",
        "supplier",
        "order_by",
        "expected_receipt",
        "order_quantity",
        "unit_cost",
        "fixed_order_cost",
        "cost",
        "moq",
        "order_multiple",
        "inventory_position",
        "reorder_point",
        "order_up_to",
        "runs_out_before_receipt",
        "explanation",
        "run_id",
    ],
}
#: decimals of the numeric attachment columns: pieces whole, money two places, days one
_ROUND = {
    "quantity": 0, "packs": 0, "receiver_units_short": 0, "donor_excess_units": 0, "units": 0, "plan_units": 0,
    "transfer_cost": 2, "expected_benefit": 2, "net_benefit": 2, "value_at_risk": 2, "donor_days_of_cover": 1,
    "order_quantity": 0, "moq": 0, "order_multiple": 0, "inventory_position": 0, "reorder_point": 0,
    "order_up_to": 0, "cost": 2, "unit_cost": 4, "fixed_order_cost": 2,
}  # fmt: skip


def export_frame(
    df: pd.DataFrame, kind: str, lang: str, items: pd.DataFrame | None, locations: pd.DataFrame | None
) -> pd.DataFrame:
    """The attachment table of ``transfers``, ``alerts`` or ``purchases`` in ``lang``: item and location names next to
    the codes, codes of types, severities, actions, tiers and plan reasons as words, numbers
    rounded (pieces whole, money two places), the explanation of ``lang`` and headers in
    ``lang`` (:data:`pipelines.labels.COLUMNS`)."""
    from pipelines import labels as names

    inames, lnames = item_names(items, lang), location_names(locations)
    t = labels(lang)
    out = df.copy()
    out["item_name"] = out["sku"].map(inames).astype("str")
    out["explanation"] = out["explanation_zh" if lang == "zh-CN" else "explanation_en"]
    if kind == "purchases":
        out["location_name"] = out["location"].map(lnames).astype("str")
        out["order_quantity"] = out["quantity"]
        yes, no = ("是", "否") if lang == "zh-CN" else ("yes", "no")
        out["runs_out_before_receipt"] = out["runs_out_before_receipt"].map({True: yes, False: no})
    elif kind == "transfers":
        out["from_name"] = out["from_location"].map(lnames).astype("str")
        out["to_name"] = out["to_location"].map(lnames).astype("str")
        out["net_benefit"] = out["expected_benefit"] - out["transfer_cost"]
        out["approval_tier"] = out["approval_tier"].map(lambda c: names._pick(names.TIERS, str(c), lang))
        out["method"] = out["method"].map(lambda c: names._pick(names.TIERS, str(c), lang))
    else:
        out["location_name"] = out["location"].map(lnames).astype("str")
        out["alert_type"] = out["alert_type"].map(lambda c: t["alert_types"].get(c, c))
        out["severity"] = out["severity"].map(lambda c: t["severities"].get(c, c))
        out["action"] = out["action"].map(lambda c: names.action(str(c), lang))
        if "plan_reason" not in out.columns:
            out["plan_reason"], out["plan_units"], out["plan_locations"] = "", 0.0, ""
        out["plan_reason"] = out["plan_reason"].map(lambda c: names.plan_reason(str(c), lang))
    for col, dec in _ROUND.items():
        if col in out.columns:
            out[col] = pd.to_numeric(out[col], errors="coerce").round(dec)
    out = out[[c for c in EXPORT_COLUMNS[kind] if c in out.columns]]
    return out.rename(columns={c: names.column(c, lang) for c in out.columns}).reset_index(drop=True)


def export_sheets(
    transfers: pd.DataFrame,
    alerts: pd.DataFrame,
    lang: str,
    items: pd.DataFrame | None,
    locations: pd.DataFrame | None,
    purchases: pd.DataFrame | None = None,
) -> dict[str, pd.DataFrame]:
    """The workbook's sheets: the transfers, the purchase proposals (when given), then one sheet per
    alert kind (named in ``lang``)."""
    t = labels(lang)
    sheets = {t["sections"]["transfers"]: export_frame(transfers, "transfers", lang, items, locations)}
    if purchases is not None:
        sheets[t["sections"]["purchases"]] = export_frame(purchases, "purchases", lang, items, locations)
    for kind in ("stockout_risk", "near_expiry", "excess", "slow_mover"):
        part = alerts[alerts["alert_type"] == kind]
        sheets[t["alert_types"][kind]] = export_frame(part, "alerts", lang, items, locations)
    return sheets


def csv_bytes(df: pd.DataFrame) -> bytes:
    """The frame as CSV, UTF-8 with BOM, dates as YYYY-MM-DD, text cells defused against formulas."""
    out = df.copy()
    for c in _text_columns(out):
        s = out[c]
        risky = s.notna() & s.astype("str").str.match(_FORMULA_START)
        if risky.any():
            out[c] = s.where(~risky, "'" + s.astype("str"))
    return out.to_csv(index=False, date_format="%Y-%m-%d").encode("utf-8-sig")


def xlsx_bytes(sheets: dict[str, pd.DataFrame]) -> bytes:
    """One workbook (openpyxl via pandas) with a sheet per frame, the header frozen and filterable;
    text stays text, never a formula."""
    buf = io.BytesIO()
    with pd.ExcelWriter(buf, engine="openpyxl") as writer:
        for name, df in sheets.items():
            out = df.copy()
            for c in out.columns:
                if pd.api.types.is_datetime64_any_dtype(out[c]):
                    # business dates: python dates get pandas' YYYY-MM-DD cell format (datetimes
                    # would show 00:00:00, and ExcelWriter's datetime_format is not passed to openpyxl)
                    out[c] = out[c].dt.date.astype(object).where(out[c].notna(), None)
            text_cols = _text_columns(out)
            for c in text_cols:
                s = out[c]
                as_text = s.astype("str")
                bad = s.notna() & as_text.str.contains(_XLSX_ILLEGAL.pattern, regex=True)
                if bad.any():  # openpyxl refuses control characters; only those cells change
                    out[c] = s.where(~bad, as_text.str.replace(_XLSX_ILLEGAL.pattern, "", regex=True))
            out.to_excel(writer, sheet_name=name[:31], index=False)
            ws = writer.book[name[:31]]
            for c in text_cols:
                s = out[c]
                rows = (s.notna() & s.astype("str").str.startswith("=")).to_numpy().nonzero()[0]
                col = out.columns.get_loc(c) + 1
                for r in rows:  # glue: only the few cells openpyxl took for formulas
                    cell = ws.cell(row=int(r) + 2, column=col)
                    cell.data_type = "s"
                    cell.quotePrefix = True
            ws.freeze_panes = "A2"
            ws.auto_filter.ref = ws.dimensions  # a filter on every column of the header
            for i, c in enumerate(out.columns, start=1):  # wide enough for the header and a typical cell
                sample = out[c].head(200).astype("str").str.len().fillna(0)
                typical = int(sample.median()) if len(sample) else 0
                wide = 2 if any(ord(ch) > 0x2E80 for ch in str(c)) else 1  # a CJK character is two columns wide
                width = max(len(str(c)) * wide, typical)
                ws.column_dimensions[ws.cell(row=1, column=i).column_letter].width = min(max(width + 2, 8), 60)
    return buf.getvalue()


def inline_html(msg: EmailMessage) -> str:
    """The HTML body of a digest with its ``cid:`` images as data URIs: one self-contained page, as
    a mail client shows it (for a browser preview, the screenshots and the 390 px test)."""
    html_part = msg.get_body(preferencelist=("html",))
    if html_part is None:
        raise ValueError("the message has no HTML body")
    html = str(html_part.get_content())
    for part in msg.walk():
        cid = part.get("Content-ID")
        if cid and part.get_content_maintype() == "image":
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            data = base64.b64encode(payload).decode("ascii")
            html = html.replace(f"cid:{cid.strip('<>')}", f"data:{part.get_content_type()};base64,{data}")
    return html


def _slug(text: str, default: str = "message", max_len: int = 80) -> str:
    """ASCII file-name fragment: letters, digits, dot, dash and underscore only."""
    ascii_text = unicodedata.normalize("NFKD", str(text)).encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", ascii_text).strip("-._")
    slug = re.sub(r"-{2,}", "-", slug)[:max_len].strip("-._")
    return slug or default


def _set_bodies(msg: EmailMessage, text: str, html: str) -> None:
    """Plain text plus HTML alternative; base64 for non-ASCII (7-bit safe for any server)."""

    def cte(body: str) -> str:
        return "quoted-printable" if body.isascii() else "base64"

    msg.set_content(text, subtype="plain", charset="utf-8", cte=cte(text))
    msg.add_alternative(html, subtype="html", charset="utf-8", cte=cte(html))


# --------------------------------------------------------------------------------------------
# Digest
# --------------------------------------------------------------------------------------------


def digest_subject(run_date: date, n_approval: int, n_high: int, lang: str) -> str:
    """``[Tiaobo] 2026-11-25: 12 transfers need approval, 5 high alerts`` (or the zh-CN form)."""
    t = _DIGEST_TEXT[lang]
    if lang == "zh-CN":
        return t["subject"].format(date=locale_day(run_date, lang), n=n_approval, h=n_high)
    return t["subject"].format(
        date=locale_day(run_date, lang),
        n=n_approval,
        transfers="transfer needs" if n_approval == 1 else "transfers need",
        h=n_high,
        alerts="alert" if n_high == 1 else "alerts",
    )


def _with_links(rows: list[dict[str, Any]], cfg: Config, run_date: date) -> list[dict[str, Any]]:
    """Each row with ``link``: its page in the workbench when ``workbench.base_url`` is set, else None."""
    from pipelines.workbench.links import transfer_link

    base = cfg.workbench.base_url
    return [
        {**r, "link": transfer_link(base, run_date, r["sku"], r["from_location"], r["to_location"]) if base else None}
        for r in rows
    ]


def build_digest(
    frames: dict[str, pd.DataFrame],
    summary: dict,
    group: RecipientGroup,
    cfg: Config,
    locations: pd.DataFrame | None,
    items: pd.DataFrame | None,
    kpi_history: pd.DataFrame | None = None,
) -> EmailMessage:
    """The morning digest of one planner group as an email (not sent; see :func:`deliver`).

    ``kpi_history``: ``kpis`` rows of past run dates; the network trends of
    :data:`pipelines.report.TREND_METRICS` are drawn as small PNG charts shown inline (the HTML part
    becomes ``multipart/related``, images referenced by ``cid:``).

    Body: transfers needing planner approval (up to :data:`DIGEST_MAX_TRANSFERS`) and the count of
    automatic ones, the top :data:`DIGEST_TOP_ALERTS` alerts by value at risk, the network KPIs
    and the quarantined row count. Attachments: transfers and alerts as CSV and one workbook with
    sheets ``transfers`` and ``alerts``, all filtered to the group.
    """
    lang = group.language
    currency = str(summary.get("currency") or cfg.currency)
    rt, dt = labels(lang, currency), _DIGEST_TEXT[lang]
    run_date = run_date_of(summary, frames)
    transfers, alerts, warn_keys = filter_for_group(
        frame(frames, "transfers"),
        frame(frames, "alerts"),
        group,
        locations,
        items,
        frames.get("inventory_policy"),
    )
    transfers = sort_transfers(transfers)
    alerts = sort_alerts(alerts)
    purchases = sort_purchases(
        filter_purchases(frame(frames, "purchase_proposals"), group, locations, items, frames.get("inventory_policy"))
    )
    planner = transfers[transfers["approval_tier"] == "planner"]
    n_auto = int((transfers["approval_tier"] == "auto").sum())
    n_high = int((alerts["severity"] == "high").sum())
    top = (
        alerts.assign(_v=-alerts["value_at_risk"].fillna(0.0))
        .sort_values("_v", kind="mergesort")
        .head(DIGEST_TOP_ALERTS)
    )
    quarantined = quarantined_count(summary, frame(frames, "quarantine"))
    history = kpi_history
    if history is None or history.empty:
        history = frame(frames, "kpis")
    trends = [
        {
            **tr,
            "cid": f"kpi-{tr['metric']}.{run_date:%Y%m%d}@tiaobo",
            "label": metric_label(tr["metric"], lang),
            "shown": metric_value(tr["metric"], tr["latest"], lang, currency),
        }
        for tr in kpi_trends(history, run_date)
    ]
    ctx = {
        "lang": lang,
        "t": rt,
        "d": dt,
        "group": group.name,
        "run_date": run_date.isoformat(),
        "run_day": long_day(run_date, lang),
        "run_id": summary.get("run_id") or "",
        "filters": dt["filters"].format(
            categories=", ".join(group.categories) or dt["all"], regions=", ".join(group.regions) or dt["all"]
        )
        if (group.categories or group.regions)
        else "",
        "planner": _with_links(
            transfer_rows(planner.head(DIGEST_MAX_TRANSFERS), lang, items, locations), cfg, run_date
        ),
        "planner_total": int(len(planner)),
        "more_planner": max(0, int(len(planner)) - DIGEST_MAX_TRANSFERS),
        "n_auto": n_auto,
        "purchases": purchase_rows(purchases.head(DIGEST_MAX_PURCHASES), lang, items, locations),
        "purchases_total": int(len(purchases)),
        "purchases_line": dt["purchases_line"].format(
            n=len(purchases),
            v=metric_value("purchases_proposed_value", float(purchases["cost"].sum()), lang, currency),
            late=int(purchases["runs_out_before_receipt"].sum()),
        ),
        "alerts": alert_rows(top, lang, items, locations),
        "today": todays_actions(alerts, transfers, lang, items, locations),
        "noise": noise_line(summary, lang),
        "workbench_url": cfg.workbench.base_url.rstrip("/") + "/" if cfg.workbench.base_url else None,
        "alerts_total": int(len(alerts)),
        "n_high": n_high,
        "kpis": network_kpis(frame(frames, "kpis"), lang, currency),
        "trends": trends,
        "quarantined": quarantined,
        "warnings": [dt[k] for k in warn_keys],
    }
    env = jinja_env()
    html = env.get_template("digest.html").render(**ctx)
    text = env.get_template("digest.txt").render(**ctx)

    msg = EmailMessage()
    msg["Subject"] = digest_subject(run_date, int(len(planner)), n_high, lang)
    msg["From"] = cfg.email.sender
    msg["To"] = ", ".join(group.recipients)
    msg[GROUP_HEADER] = group.name
    msg[RUN_DATE_HEADER] = run_date.isoformat()
    _set_bodies(msg, text, html)
    if trends:
        html_part = msg.get_body(preferencelist=("html",))
        assert html_part is not None
        for tr in trends:
            html_part.add_related(
                tr["png"],
                maintype="image",
                subtype="png",
                cid=f"<{tr['cid']}>",
                filename=f"{tr['metric']}.png",
                disposition="inline",
            )

    tx = export_frame(transfers, "transfers", lang, items, locations)
    ax = export_frame(alerts, "alerts", lang, items, locations)
    stem = f"{run_date.isoformat()}_{_slug(group.name, 'group')}"
    msg.add_attachment(csv_bytes(tx), maintype="text", subtype="csv", filename=f"transfers_{stem}.csv")
    msg.add_attachment(csv_bytes(ax), maintype="text", subtype="csv", filename=f"alerts_{stem}.csv")
    px = export_frame(purchases, "purchases", lang, items, locations)
    msg.add_attachment(csv_bytes(px), maintype="text", subtype="csv", filename=f"purchases_{stem}.csv")
    msg.add_attachment(
        xlsx_bytes(export_sheets(transfers, alerts, lang, items, locations, purchases)),
        maintype=XLSX_MIME[0],
        subtype=XLSX_MIME[1],
        filename=f"tiaobo_{stem}.xlsx",
    )
    return msg


# --------------------------------------------------------------------------------------------
# Failure email
# --------------------------------------------------------------------------------------------


def build_failure_email(
    cfg: Config,
    run_date: date,
    *,
    dag_id: str,
    task_id: str,
    error: str,
    where_to_look: str,
    examples: pd.DataFrame | None = None,
) -> EmailMessage:
    """The data-team email for a failed task: task, error or rule, example failing rows, where to look.

    Up to :data:`FAILURE_EXAMPLE_ROWS` example rows are shown (escaped) in the body; all of them
    (up to :data:`FAILURE_ATTACH_MAX_ROWS`) are attached as CSV.
    """
    columns: list[str] = []
    rows: list[list[str]] = []
    n_examples = 0
    if examples is not None and len(examples):
        n_examples = int(len(examples))
        head = examples.head(FAILURE_EXAMPLE_ROWS)
        columns = [str(c) for c in head.columns]
        shown = head.astype(object).where(head.notna(), "")
        rows = [[str(v) for v in r] for r in shown.itertuples(index=False, name=None)]
    ctx = {
        "run_date": run_date.isoformat(),
        "dag_id": dag_id,
        "task_id": task_id,
        "error": error,
        "where_to_look": where_to_look,
        "columns": columns,
        "rows": rows,
        "n_examples": n_examples,
        "attached": n_examples > 0,
    }
    env = jinja_env()
    msg = EmailMessage()
    msg["Subject"] = f"[Tiaobo] FAILED {run_date.isoformat()}: {dag_id}.{task_id}"
    msg["From"] = cfg.email.sender
    msg["To"] = ", ".join(cfg.email.data_team)
    msg[GROUP_HEADER] = "data-team"
    msg[RUN_DATE_HEADER] = run_date.isoformat()
    _set_bodies(msg, env.get_template("failure.txt").render(**ctx), env.get_template("failure.html").render(**ctx))
    if n_examples:
        assert examples is not None
        msg.add_attachment(
            csv_bytes(examples.head(FAILURE_ATTACH_MAX_ROWS)),
            maintype="text",
            subtype="csv",
            filename=f"failing_rows_{run_date.isoformat()}_{_slug(task_id, 'task')}.csv",
        )
    return msg


# --------------------------------------------------------------------------------------------
# Delivery
# --------------------------------------------------------------------------------------------


def eml_path(msg: EmailMessage, out_dir: Path) -> Path:
    """``<group>__<subject slug>.eml`` in ``out_dir`` (the same message always gets the same name)."""
    group = msg.get(GROUP_HEADER) or str(msg.get("To", "")).split("@")[0]
    return Path(out_dir) / f"{_slug(group, 'recipients', 40)}__{_slug(str(msg.get('Subject', '')))}.eml"


def write_eml(msg: EmailMessage, out_dir: Path) -> Path:
    """Write the message as an .eml file atomically; returns the path."""
    target = eml_path(msg, out_dir)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_bytes(msg.as_bytes())
    os.replace(tmp, target)
    return target


def _permanent(exc: BaseException) -> bool:
    """An SMTP answer that a retry will not change (5xx, authentication, refused recipients)."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused | smtplib.SMTPNotSupportedError):
        return True
    return isinstance(exc, smtplib.SMTPResponseException) and 500 <= exc.smtp_code < 600


@dataclass(frozen=True)
class SmtpSettings:
    """Where and how to send: resolved per delivery by :func:`smtp_settings`."""

    host: str
    port: int
    starttls: bool
    ssl: bool
    user: str | None
    password: str | None
    source: str  # "config" | "environment" | "airflow connection <id>"

    def __repr__(self) -> str:  # never show the password
        return f"SmtpSettings({self.host}:{self.port}, starttls={self.starttls}, ssl={self.ssl}, user={self.user!r}, from {self.source})"


def _env_bool(name: str) -> bool | None:
    v = os.environ.get(name)
    return None if v is None or v == "" else v.strip().lower() in ("1", "true", "yes", "on")


def smtp_settings(cfg: Config) -> SmtpSettings | None:
    """The SMTP server to use, or None when none is configured (messages become .eml files).

    - ``email.smtp_conn_id`` set: the Airflow connection of that id (``airflow.sdk.BaseHook``,
      imported only here): host, port, login, password; extras ``starttls`` / ``ssl`` (or
      ``disable_tls: false``) override the config's TLS flags. Inside Airflow the connection comes
      from the metadata DB or a secrets backend; outside, from ``AIRFLOW_CONN_<ID>``.
    - otherwise the config's ``smtp_host`` / ``smtp_port`` / TLS flags, each overridable from the
      environment (``TIAOBO_SMTP_HOST``, ``TIAOBO_SMTP_PORT``, ``TIAOBO_SMTP_STARTTLS``,
      ``TIAOBO_SMTP_SSL``); credentials from ``TIAOBO_SMTP_USER`` / ``TIAOBO_SMTP_PASSWORD``.
    Raises ``RuntimeError`` naming the connection id when the Airflow connection cannot be read.
    """
    e = cfg.email
    if e.smtp_conn_id:
        try:
            from airflow.sdk import BaseHook

            conn = BaseHook.get_connection(e.smtp_conn_id)
        except Exception as exc:
            raise RuntimeError(
                f"SMTP: could not read the Airflow connection {e.smtp_conn_id!r} (email.smtp_conn_id):"
                f" {type(exc).__name__}: {exc}"
            ) from exc
        extra = dict(conn.extra_dejson or {})
        use_ssl = bool(extra.get("ssl", e.smtp_ssl))
        starttls = bool(extra.get("starttls", not extra.get("disable_tls", not e.smtp_starttls)))
        if not conn.host:
            raise RuntimeError(f"SMTP: the Airflow connection {e.smtp_conn_id!r} has no host")
        return SmtpSettings(
            host=str(conn.host),
            port=int(conn.port or e.smtp_port),
            starttls=starttls and not use_ssl,
            ssl=use_ssl,
            user=conn.login or None,
            password=conn.password or None,
            source=f"airflow connection {e.smtp_conn_id}",
        )
    host = os.environ.get("TIAOBO_SMTP_HOST") or e.smtp_host
    if not host:
        return None
    port_env = os.environ.get("TIAOBO_SMTP_PORT")
    ssl_env, starttls_env = _env_bool("TIAOBO_SMTP_SSL"), _env_bool("TIAOBO_SMTP_STARTTLS")
    use_ssl = e.smtp_ssl if ssl_env is None else ssl_env
    starttls = e.smtp_starttls if starttls_env is None else starttls_env
    from_env = bool(os.environ.get("TIAOBO_SMTP_HOST") or port_env)
    return SmtpSettings(
        host=host,
        port=int(port_env) if port_env else e.smtp_port,
        starttls=starttls and not use_ssl,
        ssl=use_ssl,
        user=os.environ.get("TIAOBO_SMTP_USER") or None,
        password=os.environ.get("TIAOBO_SMTP_PASSWORD") or None,
        source="environment" if from_env else "config",
    )


class _DeadlineFile:
    """The SMTP reply stream with a deadline: each line may take only the time left of the
    message's total budget (a server that sends greeting lines for ever cannot hold us)."""

    def __init__(self, sock: Any, deadline: float, per_read_s: float, where: str, total_s: float) -> None:
        self._sock, self._raw = sock, sock.makefile("rb")
        self._deadline, self._per_read, self._where, self._total = deadline, per_read_s, where, total_s

    def readline(self, size: int = -1) -> bytes:
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise self._late()
        self._sock.settimeout(min(left, self._per_read))
        try:
            return bytes(self._raw.readline(size))
        except TimeoutError:
            if time.monotonic() >= self._deadline:
                raise self._late() from None
            raise

    def _late(self) -> TimeoutError:
        return TimeoutError(
            f"the SMTP server {self._where} kept the message longer than {self._total:g} s (email.smtp_total_seconds)"
        )

    def close(self) -> None:
        self._raw.close()


class _Deadline:
    """Mixin for ``smtplib.SMTP``/``SMTP_SSL``: one total time limit for the whole conversation."""

    _deadline_info: tuple[float, float, str, float]
    file: Any
    sock: Any

    def getreply(self) -> tuple[int, bytes]:
        if self.file is None and self.sock is not None:  # smtplib makes the file lazily, here: ours
            self.file = _DeadlineFile(self.sock, *self._deadline_info)
        return super().getreply()  # type: ignore[misc]


class _DeadlineSMTP(_Deadline, smtplib.SMTP):
    def __init__(self, host: str, port: int, *, timeout: float, total: float) -> None:
        self._deadline_info = (time.monotonic() + total, timeout, f"{host}:{port}", total)
        super().__init__(host, port, timeout=timeout)


class _DeadlineSMTPSSL(_Deadline, smtplib.SMTP_SSL):
    def __init__(self, host: str, port: int, *, timeout: float, total: float, context: ssl.SSLContext) -> None:
        self._deadline_info = (time.monotonic() + total, timeout, f"{host}:{port}", total)
        super().__init__(host, port, timeout=timeout, context=context)


def _send_once(msg: EmailMessage, cfg: Config, smtp_cfg: SmtpSettings) -> dict[str, Any]:
    e = cfg.email
    smtp: smtplib.SMTP
    if smtp_cfg.ssl:
        smtp = _DeadlineSMTPSSL(
            smtp_cfg.host,
            smtp_cfg.port,
            timeout=e.smtp_timeout_seconds,
            total=e.smtp_total_seconds,
            context=ssl.create_default_context(),
        )
    else:
        smtp = _DeadlineSMTP(smtp_cfg.host, smtp_cfg.port, timeout=e.smtp_timeout_seconds, total=e.smtp_total_seconds)
    with smtp:
        smtp.ehlo()
        if smtp_cfg.starttls:
            smtp.starttls(context=ssl.create_default_context())
            smtp.ehlo()
        if smtp_cfg.user and smtp_cfg.password:
            smtp.login(smtp_cfg.user, smtp_cfg.password)
        refused = smtp.send_message(msg)
    return {str(k): str(v) for k, v in refused.items()}


def _stamp(msg: EmailMessage, sender: str) -> None:
    """``Date`` and ``Message-ID`` headers, when the message has none (added only when sending)."""
    if "Date" not in msg:
        msg["Date"] = formatdate(localtime=True)
    if "Message-ID" not in msg:
        msg["Message-ID"] = make_msgid(domain=sender.rsplit("@", 1)[-1] if "@" in sender else None)


def deliver(msg: EmailMessage, cfg: Config, out_dir: Path, *, backoff_seconds: float | None = None) -> dict:
    """Send ``msg`` (or write it as .eml when no SMTP host is configured); never raises.

    Returns ``{"mode": "eml", "path"}``, ``{"mode": "smtp", "recipients", "refused", "attempts"}``,
    or, when every attempt failed, ``{"mode": "failed", "error", "path", "attempts"}`` with the
    message written to ``out_dir`` so nothing is lost. SMTP is tried ``1 + cfg.email.smtp_retries``
    times with exponential backoff starting at ``backoff_seconds`` (default: the config's
    ``email.smtp_retry_backoff_seconds`` when it exists, else 2 s; capped at 60 s); permanent
    answers (5xx, authentication, all recipients refused) are not retried. Before sending,
    ``Date`` and ``Message-ID`` headers are added to ``msg`` when it has none.
    """
    e = cfg.email
    try:
        smtp_cfg = smtp_settings(cfg)
    except RuntimeError as exc:  # the Airflow connection cannot be read: keep the message, report
        log.error("%s", exc)
        return _keep_undelivered(msg, out_dir, str(exc), 0)
    if smtp_cfg is None:
        try:
            return {"mode": "eml", "path": str(write_eml(msg, out_dir))}
        except Exception as exc:  # disk full, permissions: report, never raise
            log.error("could not write the email %r to %s: %s", msg.get("Subject"), out_dir, exc)
            return {"mode": "failed", "error": f"could not write .eml: {exc}", "path": None, "attempts": 0}

    if backoff_seconds is None:
        backoff_seconds = float(getattr(e, "smtp_retry_backoff_seconds", DEFAULT_SMTP_BACKOFF_SECONDS))
    _stamp(msg, e.sender)

    attempts = 0
    last_error = ""
    for attempt in range(e.smtp_retries + 1):
        attempts = attempt + 1
        try:
            refused = _send_once(msg, cfg, smtp_cfg)
            recipients = [a.strip() for a in str(msg.get("To", "")).split(",") if a.strip()]
            if refused:
                log.warning("SMTP refused some recipients of %r: %s", msg.get("Subject"), refused)
            return {"mode": "smtp", "recipients": recipients, "refused": refused, "attempts": attempts}
        except Exception as exc:  # smtplib, socket and TLS errors alike
            last_error = f"{type(exc).__name__}: {exc}"
            log.warning(
                "sending %r to %s:%s failed (attempt %d of %d): %s",
                msg.get("Subject"),
                smtp_cfg.host,
                smtp_cfg.port,
                attempts,
                e.smtp_retries + 1,
                last_error,
            )
            if _permanent(exc) or attempt == e.smtp_retries:
                break
            time.sleep(min(backoff_seconds * (2**attempt), MAX_SMTP_BACKOFF_SECONDS))
    return _keep_undelivered(msg, out_dir, last_error, attempts)


def _keep_undelivered(msg: EmailMessage, out_dir: Path, error: str, attempts: int) -> dict[str, Any]:
    """Write an undelivered message as .eml and describe the failure (never raises)."""
    try:
        path: str | None = str(write_eml(msg, out_dir))
    except Exception as exc:
        log.error("could not write the undelivered email %r to %s: %s", msg.get("Subject"), out_dir, exc)
        path = None
        error += f"; could not write .eml: {exc}"
    log.error("email %r not delivered after %d attempt(s); kept at %s", msg.get("Subject"), attempts, path)
    return {"mode": "failed", "error": error, "path": path, "attempts": attempts}


# --------------------------------------------------------------------------------------------
# Stage entry points
# --------------------------------------------------------------------------------------------


def _read_frames(ctx: RunContext) -> dict[str, pd.DataFrame]:
    return {name: ctx.read(name) if ctx.exists(name) else contract.empty(name) for name in contract.OUTPUT_TABLES}


def _default_summary(ctx: RunContext, frames: dict[str, pd.DataFrame]) -> dict[str, Any]:
    if ctx.exists("summary.json"):
        summary = dict(ctx.read_json("summary"))
        summary.setdefault("run_date", ctx.run_date.isoformat())
        return summary
    try:
        run_id = ctx.run_id
    except FileNotFoundError:
        run_id = ""
    quarantine = frames.get("quarantine")
    return {
        "run_date": ctx.run_date.isoformat(),
        "run_id": run_id,
        "counts": {},
        "quarantined": 0 if quarantine is None else int(len(quarantine)),
        "notes": [],
    }


def _kpi_history(ctx: RunContext) -> pd.DataFrame | None:
    """Network KPI rows of the published run dates up to this one (None when the reporting
    database cannot be read: the digest then shows today's values without trends)."""
    from pipelines import reporting
    from pipelines.report import TREND_DAYS

    try:
        return reporting.read_kpi_history(ctx.cfg.reporting_url(), ctx.run_date, TREND_DAYS)
    except Exception as exc:
        log.warning("KPI history unavailable for the digest trends: %s", exc)
        return None


def notify_stage(
    ctx: RunContext, frames: dict[str, pd.DataFrame] | None = None, summary: dict | None = None
) -> StageResult:
    """Write the report (English and zh-CN) into ``ctx.output_dir`` and deliver one digest per group.

    Never raises for a delivery problem: failed emails are counted (``emails_failed``), kept as
    .eml files and named in the notes, so published results stay published.
    """
    cfg = ctx.cfg
    frames = dict(frames) if frames is not None else _read_frames(ctx)
    summary = dict(summary) if summary is not None else _default_summary(ctx, frames)
    summary.setdefault("run_date", ctx.run_date.isoformat())
    locations = ctx.read("locations") if ctx.exists("locations") else None
    items = ctx.read("items") if ctx.exists("items") else None
    report_frames = {**frames, "items": items, "locations": locations}

    history = _kpi_history(ctx)
    report_frames["kpi_history"] = history
    report_frames["sales"] = ctx.read("sales") if ctx.exists("sales") else None
    out_dir = ctx.output_dir
    result = StageResult(stage="notify", counts={"emails_sent": 0, "emails_written": 0, "emails_failed": 0})
    result.paths["report"] = str(write_report(report_frames, summary, out_dir, "en"))
    result.paths["report_zh"] = str(write_report(report_frames, summary, out_dir, "zh-CN"))
    for group in cfg.email.planners:
        msg = build_digest(frames, summary, group, cfg, locations, items, history)
        outcome = deliver(msg, cfg, out_dir)
        key = {"smtp": "emails_sent", "eml": "emails_written"}.get(outcome["mode"], "emails_failed")
        result.counts[key] += 1
        if outcome.get("path"):
            result.paths[f"eml_{group.name}"] = str(outcome["path"])
        if outcome["mode"] == "failed":
            result.notes.append(
                f"digest for {group.name} not delivered ({outcome['error']}); kept at {outcome.get('path')}"
            )
        elif outcome.get("refused"):
            result.notes.append(f"digest for {group.name}: recipients refused {sorted(outcome['refused'])}")
    if result.counts["emails_failed"]:
        record_email_failure(ctx, [n for n in result.notes if "not delivered" in n], result.counts)
    return result


def record_email_failure(ctx: RunContext, notes: list[str], counts: dict[str, int]) -> str | None:
    """Record undelivered digests in the run log: an attempt of its own with status ``email_failed``,
    stage ``notify``, the counts and one line per undelivered group. Returns the attempt id (None
    when the run log itself cannot be written; that is logged, never raised)."""
    from pipelines import reporting

    try:
        url = ctx.cfg.reporting_url()
        try:
            run_id: str | None = ctx.run_id
        except FileNotFoundError:
            run_id = None
        attempt = reporting.log_attempt_start(url, ctx.run_date)
        reporting.log_attempt_end(
            url,
            attempt,
            "email_failed",
            run_id=run_id,
            stage="notify",
            counts=counts,
            message=f"{counts.get('emails_failed', 0)} digest(s) not delivered; results are published. "
            + " | ".join(notes),
        )
        return attempt
    except Exception:
        log.exception("could not record the undelivered digests in the run log")
        return None


def send_failure(
    cfg: Config,
    run_date: date,
    *,
    dag_id: str,
    task_id: str,
    error: str,
    where_to_look: str,
    examples: pd.DataFrame | None = None,
) -> dict:
    """Build the data-team failure email and deliver it (``.eml`` into ``cfg.output_dir/<run_date>/``)."""
    msg = build_failure_email(
        cfg, run_date, dag_id=dag_id, task_id=task_id, error=error, where_to_look=where_to_look, examples=examples
    )
    out = deliver(msg, cfg, Path(cfg.output_dir) / run_date.isoformat())
    try:  # failure .eml files of old dates do not pile up (email.failure_eml_retention_days)
        from pipelines.housekeeping import prune_failure_emails

        prune_failure_emails(cfg.output_dir, run_date, cfg.email.failure_eml_retention_days)
    except Exception:
        log.exception("could not prune old failure emails in %s", cfg.output_dir)
    return out
