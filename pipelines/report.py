"""The planner report: one self-contained HTML file per run date (English and Chinese).

:func:`render_report` turns the run's output tables (forecasts, inventory_policy, alerts,
transfers, kpis, dq_results, quarantine; any may be missing or empty) and the run ``summary`` into
a single HTML page that opens offline: inline CSS, no scripts, no fonts or images fetched from
anywhere, forecast charts embedded as base64 PNG drawn with matplotlib's Agg canvas. Sections carry
stable ids (``summary``, ``transfers``, ``alerts``, ``health``, ``data-quality``, ``forecast``) so
links and tests can rely on them.

Headings and fixed sentences are translated (``en`` / ``zh-CN``); data text (item names,
explanations, notes) is shown as it is, HTML-escaped by Jinja2's autoescape. Chart text is kept to
ASCII (dates, numbers, "mean", "p50-p90") because the machines carry no CJK font; the translated
caption is HTML next to the chart.

The helpers here (labels, sorting, name look-ups, Jinja environment) are shared with
:mod:`pipelines.notify`, which builds the planner digest from the same frames.

:func:`report_command` rebuilds the report of a published run date from the reporting database
(what ``tiaobo report --date D`` calls).

Limits: the transfer, review and alert tables show at most :data:`MAX_REPORT_ROWS` rows each, the
first :data:`FOLD_ROWS` open and the rest folded (the full lists are in the workbench, the reporting
database and the digest attachments); the KPI trends are network-wide;
actual sales on the forecast charts need the run's staged ``sales`` file (the reporting database
holds no sales), without it the charts show the forecast only.
"""

from __future__ import annotations

import base64
import functools
import io
import math
import os
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Any

import jinja2
import numpy as np
import pandas as pd

from pipelines import contract
from pipelines import labels as names

LANGS: tuple[str, ...] = ("en", "zh-CN")
MAX_REPORT_ROWS = 200
#: of which the first this many are shown open, the rest folded (an HTML <details>, no script)
FOLD_ROWS = 25
FORECAST_SERIES = 5
FORECAST_DAYS = 28
SEVERITY_ORDER: dict[str, int] = {"high": 0, "medium": 1, "low": 2}
BAND_ORDER: tuple[str, ...] = ("under", "healthy", "over", "no_demand")
TIER_ORDER: dict[str, int] = {"planner": 0, "auto": 1}
SECTION_IDS: tuple[str, ...] = (
    "today",
    "summary",
    "kpi-trends",
    "transfers",
    "purchases",
    "review",
    "alerts",
    "health",
    "data-quality",
    "forecast",
)
#: network KPIs drawn as small trend charts (report and digest), when they have values
TREND_METRICS: tuple[str, ...] = (
    "inventory_value",
    "days_of_inventory",
    "stockout_rate",
    "band_compliance",
    "transfers_recommended_count",
    "forecast_wape_last_horizon",
    "transfers_approved_count",
    "decision_acceptance_rate",
    "transfer_lead_time_days",
    "transfer_on_time_rate",
    "transfer_benefit_realisation",
)
TREND_DAYS = 56
ACTUAL_DAYS = 28

TEMPLATE_DIR = Path(__file__).with_name("templates")

# --------------------------------------------------------------------------------------------
# Translations: headings and fixed text. Data text is never translated.
# --------------------------------------------------------------------------------------------

_TEXT: dict[str, dict[str, Any]] = {
    "en": {
        "title": "Tiaobo planner report",
        "brand": "Tiaobo",
        "run_date": "Run date",
        "run_id": "Run id",
        "today_intro": "At most 20 lines: stock-outs first, by the margin they would lose, then the other"
        " alerts by value at risk. The full lists are below and in the workbench.",
        "when": "Date",
        "sections": {
            "today": "Today's actions",
            "summary": "Summary",
            "transfers": "Transfers",
            "purchases": "Purchase proposals",
            "alerts": "Alerts",
            "health": "Stock health",
            "data-quality": "Data quality",
            "forecast": "Forecast",
            "kpi-trends": "KPI trends",
            "review": "Transfer review",
        },
        "purchases_intro": "Orders to place with suppliers where the inventory position (on hand + in transit"
        " + on order - reserved, after tonight's recommended transfers) reaches the reorder point within the"
        " review period: the earliest order-by date first.",
        "supplier": "Supplier",
        "order_by": "Order by",
        "receipt": "Expected receipt",
        "order_cost": "Cost",
        "runs_out": "Runs out before receipt",
        "no_supplier": "none recorded",
        "review_intro": "Every transfer order against what it was meant to do: lead time, units received and"
        " whether the stockout it was meant to prevent happened.",
        "order_no": "Order",
        "state": "State",
        "lead_time": "Lead time (days)",
        "received": "Received",
        "outcome": "Receiver stocked out",
        "realised": "Realised benefit",
        "lanes_flagged": "Lanes whose observed transit differs from the configured one",
        "states": {
            "shipped": "shipped",
            "received": "received",
            "partly_received": "partly received",
            "cancelled": "cancelled",
            "expired": "expired",
        },
        "yes": "yes",
        "no": "no",
        "trend_intro": "Network KPIs over the last {days} published run dates (latest value in bold).",
        "trend_alt": "Trend of {metric}",
        "actual_note": "The black line is the units actually sold over the {days} days before the run date.",
        "none": "Nothing to report.",
        "showing": "Showing the first {shown} of {total} rows; the full list is in the workbench, the digest's attachments and the reporting database.",
        "show_more": "Show {n} more rows",
        "transfers_total": "Transfers recommended",
        "transfers_planner": "Need planner approval",
        "transfers_auto": "Approved automatically",
        "net_benefit": "Expected benefit net of cost",
        "alerts_total": "Alerts",
        "alerts_high": "High-severity alerts",
        "value_at_risk_total": "Value at risk",
        "under_stocked": "Under-stocked SKU-locations",
        "quarantined": "Rows set aside by validation",
        "stage_counts": "Rows per stage",
        "stage": "Stage",
        "table": "Table",
        "rows": "Rows",
        "notes": "Notes",
        "kpis": "Network KPIs",
        "metric": "Metric",
        "value": "Value",
        "sku": "SKU",
        "item": "Item",
        "location": "Location",
        "category": "Category",
        "from": "From",
        "to": "To",
        "units": "Units",
        "packs": "Packs",
        "cost": "Transfer cost",
        "benefit": "Expected benefit",
        "net": "Net",
        "stockout_date": "Receiver stock-out",
        "arrival": "Arrival",
        "tier": "Approval",
        "explanation": "Explanation",
        "severity": "Severity",
        "type": "Type",
        "lot": "Lot",
        "value_at_risk": "Value at risk",
        "event_date": "Date",
        "action": "Action",
        "band": "Band",
        "count": "SKU-locations",
        "share": "Share",
        "by_category": "By category",
        "dq_failed": "Failed checks",
        "dq_passed": "{n} of {total} checks passed.",
        "dq_all_passed": "All {total} checks passed.",
        "rule": "Rule",
        "column": "Column",
        "level": "Level",
        "observed": "Observed",
        "failing_rows": "Failing rows",
        "quarantine_by_rule": "Rows set aside, by table and rule",
        "example": "Example value",
        "forecast_intro": (
            "The {n} largest SKU-locations by forecast volume over the next {days} days:"
            " the line is the expected daily demand (mean), the band runs from the median (p50)"
            " to the 90th percentile (p90)."
        ),
        "forecast_total": "Expected units over {days} days",
        "forecast_peak_p90": "Highest daily p90",
        "legend": {"mean": "mean forecast", "band": "p50–p90 range", "actual": "units sold"},
        "model": "Model",
        "chart_alt": "Forecast chart for {sku} at {location}",
        "tiers": {"planner": "Planner approval", "auto": "Automatic"},
        "severities": {"high": "High", "medium": "Medium", "low": "Low"},
        "bands": {"under": "Under-stocked", "healthy": "Healthy", "over": "Over-stocked", "no_demand": "No demand"},
        "alert_types": {
            "stockout_risk": "Stock-out risk",
            "slow_mover": "Slow mover",
            "excess": "Excess stock",
            "near_expiry": "Near expiry",
        },
        "levels": {"row": "Row (rows set aside)", "table": "Table (stops the run)"},
        "footer": "Generated by Tiaobo for run date {run_date} (run {run_id}).",
    },
    "zh-CN": {
        "title": "调拨计划员报告",
        "brand": "调拨",
        "run_date": "运行日期",
        "run_id": "运行编号",
        "today_intro": "最多 20 条:先列缺货(按将损失的毛利排序),再列其他预警(按风险金额排序)。完整列表见下文和工作台。",
        "when": "日期",
        "sections": {
            "today": "今日待办",
            "summary": "概览",
            "kpi-trends": "指标趋势",
            "review": "调拨复盘",
            "transfers": "调拨建议",
            "purchases": "采购建议",
            "alerts": "预警",
            "health": "库存健康度",
            "data-quality": "数据质量",
            "forecast": "需求预测",
        },
        "purchases_intro": "库存位置（现有 + 在途 + 已订购 - 预留，计入今晚的调拨建议）在检查周期内降到再订货点时，"
        "向供应商下的采购订单；最早的下单日期排在前面。",
        "supplier": "供应商",
        "order_by": "下单日期",
        "receipt": "预计到货",
        "order_cost": "金额",
        "runs_out": "到货前缺货",
        "no_supplier": "未记录",
        "none": "无。",
        "showing": "仅显示前 {shown} 行，共 {total} 行；完整列表见工作台、摘要邮件附件和报表数据库。",
        "show_more": "展开其余 {n} 行",
        "transfers_total": "建议调拨",
        "transfers_planner": "待计划员审批",
        "transfers_auto": "自动批准",
        "net_benefit": "扣除成本后的预期收益",
        "alerts_total": "预警",
        "alerts_high": "高风险预警",
        "value_at_risk_total": "风险金额",
        "under_stocked": "库存不足的商品-地点",
        "quarantined": "校验隔离的行数",
        "stage_counts": "各阶段行数",
        "stage": "阶段",
        "table": "表",
        "rows": "行数",
        "notes": "备注",
        "kpis": "全网指标",
        "metric": "指标",
        "value": "数值",
        "sku": "SKU",
        "item": "商品",
        "location": "地点",
        "category": "品类",
        "from": "调出",
        "to": "调入",
        "units": "数量",
        "packs": "箱数",
        "cost": "调拨成本",
        "benefit": "预期收益",
        "net": "净收益",
        "stockout_date": "调入方断货日期",
        "arrival": "到货日期",
        "tier": "审批",
        "explanation": "说明",
        "severity": "严重程度",
        "type": "类型",
        "lot": "批次",
        "value_at_risk": "风险金额",
        "event_date": "日期",
        "action": "建议操作",
        "band": "健康区间",
        "count": "商品-地点数",
        "share": "占比",
        "by_category": "按品类",
        "dq_failed": "未通过的检查",
        "dq_passed": "{total} 项检查中通过 {n} 项。",
        "dq_all_passed": "全部 {total} 项检查通过。",
        "rule": "规则",
        "column": "列",
        "level": "级别",
        "observed": "观察值",
        "failing_rows": "不合格行数",
        "quarantine_by_rule": "隔离的行（按表和规则）",
        "example": "示例值",
        "forecast_intro": (
            "未来 {days} 天预测销量最大的 {n} 个商品-地点：曲线为每日预期需求（均值），"
            "阴影区间为中位数（p50）到 90 分位数（p90）。"
        ),
        "trend_intro": "最近 {days} 个已发布运行日期的全网指标（粗体为最新值）。",
        "trend_alt": "{metric} 趋势",
        "review_intro": "每张调拨单与其目的对照：时效、实收数量，以及本应避免的缺货是否发生。",
        "order_no": "调拨单",
        "state": "状态",
        "lead_time": "时效（天）",
        "received": "实收",
        "outcome": "调入方缺货",
        "realised": "实际收益",
        "lanes_flagged": "实际在途天数与配置不符的线路",
        "states": {
            "shipped": "已发货",
            "received": "已收货",
            "partly_received": "部分收货",
            "cancelled": "已取消",
            "expired": "已过期",
        },
        "yes": "是",
        "no": "否",
        "actual_note": "黑线为运行日期前 {days} 天的实际销量。",
        "forecast_total": "{days} 天预期销量",
        "forecast_peak_p90": "单日最高 p90",
        "legend": {"mean": "预测均值", "band": "p50–p90 区间", "actual": "实际销量"},
        "model": "模型",
        "chart_alt": "{sku} 在 {location} 的需求预测图",
        "tiers": {"planner": "需审批", "auto": "自动执行"},
        "severities": {"high": "高", "medium": "中", "low": "低"},
        "bands": {"under": "库存不足", "healthy": "健康", "over": "库存过剩", "no_demand": "无需求"},
        "alert_types": {
            "stockout_risk": "缺货风险",
            "slow_mover": "滞销",
            "excess": "库存过量",
            "near_expiry": "临期",
        },
        "levels": {"row": "行级（隔离坏行）", "table": "表级（终止运行）"},
        "footer": "调拨系统生成，运行日期 {run_date}（运行编号 {run_id}）。",
    },
}


#: the labels of money columns, which carry the currency
MONEY_LABELS = ("cost", "benefit", "net", "net_benefit", "value_at_risk")


def labels(lang: str, currency: str = "") -> dict[str, Any]:
    """The fixed texts of one language (``en`` or ``zh-CN``); raises ValueError for any other.
    With ``currency`` (an ISO code), the money column headers name it: "Value at risk (CNY)"."""
    if lang not in _TEXT:
        raise ValueError(f"unsupported language {lang!r}; expected one of {', '.join(LANGS)}")
    if not currency:
        return _TEXT[lang]
    t = dict(_TEXT[lang])
    wrap = "{}（{}）" if lang == "zh-CN" else "{} ({})"
    for key in MONEY_LABELS:
        if key in t:
            t[key] = wrap.format(t[key], currency)
    return t


# --------------------------------------------------------------------------------------------
# Jinja2 environment (autoescape on for every .html template and for strings)
# --------------------------------------------------------------------------------------------


def fmt_num(value: Any, decimals: int = 0) -> str:
    """A number with thousands separators; an em dash for a missing value."""
    if value is None or value is pd.NA:
        return "—"
    try:
        x = float(value)
    except (TypeError, ValueError):
        return str(value)
    if math.isnan(x):
        return "—"
    if math.isinf(x):
        return "∞" if x > 0 else "-∞"
    return f"{x:,.{decimals}f}"


def fmt_day(value: Any, lang: str = "") -> str:
    """A business date in the locale's form (``pipelines.labels.day``; YYYY-MM-DD without a language); empty
    text for a missing one."""
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return ""
    ts = pd.Timestamp(value)
    if pd.isna(ts):
        return ""
    return names.day(ts.date(), lang) if lang else ts.strftime("%Y-%m-%d")


@jinja2.pass_context
def _day_filter(ctx: Any, value: Any) -> str:
    """The templates' ``day`` filter: the date in the rendering's language (its ``lang``)."""
    return fmt_day(value, str(ctx.get("lang") or ""))


def fmt_pct(value: Any, decimals: int = 1) -> str:
    """A share (0..1) as a percentage."""
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{float(value) * 100:.{decimals}f}%"


def _text(value: Any) -> str:
    """Data text for display: missing values become empty text."""
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value)


def make_env() -> jinja2.Environment:
    """The Jinja2 environment of the report and emails.

    Autoescape is on for ``.html`` templates and template strings, off for ``.txt`` (plain-text
    email parts, where HTML entities would be wrong). Undefined names raise.
    """
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATE_DIR)),
        autoescape=jinja2.select_autoescape(
            enabled_extensions=("html", "htm", "xml"),
            disabled_extensions=("txt",),
            default_for_string=True,
            default=True,
        ),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["num"] = fmt_num
    env.filters["day"] = _day_filter
    env.filters["pct"] = fmt_pct
    env.filters["text"] = _text
    return env


_ENV = make_env()


def env() -> jinja2.Environment:
    """The shared (module-level) Jinja2 environment."""
    return _ENV


# --------------------------------------------------------------------------------------------
# Frame helpers shared with notify
# --------------------------------------------------------------------------------------------


def frame(frames: Mapping[str, pd.DataFrame | None], name: str) -> pd.DataFrame:
    """The contract table ``name`` from ``frames``, conformed; an empty table when absent."""
    df = frames.get(name)
    if df is None:
        return contract.empty(name)
    return contract.conform(df, name)


def run_date_of(summary: Mapping[str, Any], frames: Mapping[str, pd.DataFrame | None] | None = None) -> date:
    """The run date from the summary (``date`` or ISO text), else from the frames' run_date column."""
    value = summary.get("run_date")
    if value is None and frames:
        for df in frames.values():
            if df is not None and "run_date" in df.columns and len(df):
                value = df["run_date"].iloc[0]
                break
    if value is None:
        raise ValueError("summary has no run_date and no frame carries one")
    return pd.Timestamp(value).date()


def item_names(items: pd.DataFrame | None, lang: str) -> pd.Series:
    """sku -> display name: the English name (when the source has one) in English, else the name."""
    if items is None or items.empty or "sku" not in items.columns:
        return pd.Series(dtype="str")
    names = items["name"].astype("str") if "name" in items.columns else items["sku"].astype("str")
    if lang == "en" and "name_en" in items.columns:
        en = items["name_en"]
        names = en.where(en.notna() & (en.astype("str").str.strip() != ""), names).astype("str")
    return pd.Series(names.to_numpy(), index=items["sku"].astype("str").to_numpy()).groupby(level=0).first()


def location_names(locations: pd.DataFrame | None) -> pd.Series:
    """location -> name."""
    if locations is None or locations.empty or "location" not in locations.columns or "name" not in locations.columns:
        return pd.Series(dtype="str")
    return (
        pd.Series(locations["name"].astype("str").to_numpy(), index=locations["location"].astype("str").to_numpy())
        .groupby(level=0)
        .first()
    )


def sort_transfers(df: pd.DataFrame) -> pd.DataFrame:
    """Transfers needing approval first, then by expected benefit net of cost (largest first)."""
    if df.empty:
        return df.reset_index(drop=True)
    key = pd.DataFrame(
        {
            "_tier": df["approval_tier"].map(TIER_ORDER).fillna(len(TIER_ORDER)).to_numpy(),
            "_net": -(df["expected_benefit"] - df["transfer_cost"]).fillna(0.0).to_numpy(),
            "sku": df["sku"].to_numpy(),
            "from_location": df["from_location"].to_numpy(),
            "to_location": df["to_location"].to_numpy(),
        }
    )
    order = key.sort_values(list(key.columns), kind="mergesort").index.to_numpy()
    return df.iloc[order].reset_index(drop=True)


def sort_alerts(df: pd.DataFrame) -> pd.DataFrame:
    """Alerts by severity (high, medium, low), then value at risk (largest first), then key."""
    if df.empty:
        return df.reset_index(drop=True)
    key = pd.DataFrame(
        {
            "_sev": df["severity"].map(SEVERITY_ORDER).fillna(len(SEVERITY_ORDER)).to_numpy(),
            "_var": -df["value_at_risk"].fillna(0.0).to_numpy(),
            "alert_type": df["alert_type"].to_numpy(),
            "sku": df["sku"].to_numpy(),
            "location": df["location"].to_numpy(),
            "lot": df["lot"].to_numpy(),
        }
    )
    order = key.sort_values(list(key.columns), kind="mergesort").index.to_numpy()
    return df.iloc[order].reset_index(drop=True)


def transfer_rows(
    df: pd.DataFrame, lang: str, items: pd.DataFrame | None, locations: pd.DataFrame | None
) -> list[dict[str, Any]]:
    """Transfers as template rows, with item and location names and the explanation of ``lang``."""
    if df.empty:
        return []
    inames, lnames = item_names(items, lang), location_names(locations)
    expl = "explanation_zh" if lang == "zh-CN" else "explanation_en"
    out = pd.DataFrame(
        {
            "sku": df["sku"],
            "item": df["sku"].map(inames),
            "from_location": df["from_location"],
            "from_name": df["from_location"].map(lnames),
            "to_location": df["to_location"],
            "to_name": df["to_location"].map(lnames),
            "quantity": df["quantity"],
            "packs": df["packs"],
            "transfer_cost": df["transfer_cost"],
            "expected_benefit": df["expected_benefit"],
            "net_benefit": df["expected_benefit"] - df["transfer_cost"],
            "receiver_stockout_date": df["receiver_stockout_date"],
            "arrival_date": df["arrival_date"],
            "approval_tier": df["approval_tier"],
            "explanation": df[expl],
        }
    )
    return out.astype(object).where(out.notna(), None).to_dict("records")


def sort_purchases(df: pd.DataFrame) -> pd.DataFrame:
    """Purchase proposals by order-by date, those running out before the receipt first, then cost
    (largest first), then key."""
    if df.empty:
        return df.reset_index(drop=True)
    key = pd.DataFrame(
        {
            "order_by": df["order_by"].to_numpy(),
            "_late": ~df["runs_out_before_receipt"].astype(bool).to_numpy(),
            "_cost": -df["cost"].fillna(0.0).to_numpy(),
            "sku": df["sku"].to_numpy(),
            "location": df["location"].to_numpy(),
        }
    )
    order = key.sort_values(list(key.columns), kind="mergesort").index.to_numpy()
    return df.iloc[order].reset_index(drop=True)


def purchase_rows(
    df: pd.DataFrame, lang: str, items: pd.DataFrame | None, locations: pd.DataFrame | None
) -> list[dict[str, Any]]:
    """Purchase proposals as template rows, with item and location names and the explanation of ``lang``."""
    if df.empty:
        return []
    inames, lnames = item_names(items, lang), location_names(locations)
    expl = "explanation_zh" if lang == "zh-CN" else "explanation_en"
    out = pd.DataFrame(
        {
            "sku": df["sku"],
            "item": df["sku"].map(inames),
            "location": df["location"],
            "location_name": df["location"].map(lnames),
            "supplier": df["supplier"],
            "order_by": df["order_by"],
            "expected_receipt": df["expected_receipt"],
            "quantity": df["quantity"],
            "cost": df["cost"],
            "runs_out": df["runs_out_before_receipt"].astype(bool),
            "explanation": df[expl],
        }
    )
    return out.astype(object).where(out.notna(), None).to_dict("records")


def alert_rows(
    df: pd.DataFrame, lang: str, items: pd.DataFrame | None, locations: pd.DataFrame | None
) -> list[dict[str, Any]]:
    """Alerts as template rows, with item and location names and the explanation of ``lang``."""
    if df.empty:
        return []
    inames, lnames = item_names(items, lang), location_names(locations)
    expl = "explanation_zh" if lang == "zh-CN" else "explanation_en"
    out = pd.DataFrame(
        {
            "severity": df["severity"],
            "alert_type": df["alert_type"],
            "sku": df["sku"],
            "item": df["sku"].map(inames),
            "location": df["location"],
            "location_name": df["location"].map(lnames),
            "lot": df["lot"],
            "units": df["units"],
            "value_at_risk": df["value_at_risk"],
            "event_date": df["event_date"],
            "action": df["action"],
            "action_label": df["action"].map(lambda a: names.action(str(a), lang)),
            "explanation": df[expl],
        }
    )
    return out.astype(object).where(out.notna(), None).to_dict("records")


#: at most this many lines open the report and the digest
TODAYS_ACTIONS = 20
#: of which at most this many stock-outs, so the other kinds are seen too
TODAYS_STOCKOUTS = 12

_TODAY = {
    "en": {"transfer": "Approve the transfer of {qty:,.0f} from {frm} (arrives {arrival})"},
    "zh-CN": {"transfer": "批准从 {frm} 调入 {qty:,.0f} 件(预计 {arrival} 到货)"},
}


def todays_actions(
    alerts: pd.DataFrame,
    transfers: pd.DataFrame,
    lang: str,
    items: pd.DataFrame | None,
    locations: pd.DataFrame | None,
) -> list[dict[str, Any]]:
    """What to do today, at most :data:`TODAYS_ACTIONS` lines: stock-outs first by the margin they
    lose (value at risk), at most :data:`TODAYS_STOCKOUTS` of them, then the other kinds by value at
    risk. Each line has its date (the stock-out or expiry date) and the action: for a stock-out the
    planned transfer that covers it when there is one, else the alert's action."""
    if alerts.empty:
        return []
    a = alerts.assign(_v=-alerts["value_at_risk"].fillna(0.0))
    outs = a[a["alert_type"] == "stockout_risk"].sort_values(["_v", "sku", "location"], kind="mergesort")
    rest = a[a["alert_type"] != "stockout_risk"].sort_values(["_v", "sku", "location"], kind="mergesort")
    outs = outs.head(TODAYS_STOCKOUTS)
    top = pd.concat([outs, rest.head(TODAYS_ACTIONS - len(outs))])
    rows = alert_rows(top.drop(columns="_v"), lang, items, locations)
    covering = _covering_transfers(transfers)
    for r in rows:
        t = covering.get((r["sku"], r["location"])) if r["alert_type"] == "stockout_risk" else None
        if t is not None:
            r["action_label"] = _TODAY[lang]["transfer"].format(
                qty=float(t["quantity"]), frm=t["from_location"], arrival=fmt_day(t["arrival_date"], lang)
            )
    return rows


def _covering_transfers(transfers: pd.DataFrame) -> dict[tuple[str, str], dict[str, Any]]:
    """The largest planned transfer into each (SKU, receiver)."""
    if transfers.empty:
        return {}
    t = transfers.sort_values(["quantity", "from_location"], ascending=[False, True], kind="mergesort")
    t = t.drop_duplicates(["sku", "to_location"])
    return {(r["sku"], r["to_location"]): r for r in t.to_dict("records")}


_NOISE = {
    "en": ("Not listed, with less than the materiality threshold at risk: {parts} ({v:,.2f} in all).", "{n} {k}"),
    "zh-CN": ("未列出：风险金额低于重要性门槛的预警 {parts}（合计 {v:,.2f}）。", "{k} {n} 条"),
}


def noise_line(summary: dict, lang: str) -> str:
    """The alerts counted and not listed (below their policy row's materiality), in one sentence;
    "" when there are none."""
    below = summary.get("alerts_below_materiality") or {}
    if not below:
        return ""
    types = labels(lang)["alert_types"]
    sentence, part = _NOISE[lang]
    name = (lambda k: types.get(k, k)) if lang == "zh-CN" else (lambda k: types.get(k, k).lower() + " alert(s)")
    parts = [part.format(n=v["alerts"], k=name(k)) for k, v in sorted(below.items())]
    sep = "、" if lang == "zh-CN" else ", "
    return sentence.format(parts=sep.join(parts), v=sum(float(v["value_at_risk"]) for v in below.values()))


def review_rows(review: pd.DataFrame, lang: str, items: pd.DataFrame | None) -> list[dict[str, Any]]:
    """Reviewed order lines for the report, newest departure first, with the explanation in ``lang``."""
    if review.empty:
        return []
    r = review.sort_values(["rec_run_date", "order_no", "sku"], ascending=[False, True, True], kind="mergesort")
    names = item_names(items, lang)
    expl = "explanation_zh" if lang == "zh-CN" else "explanation_en"
    return [
        {
            "order_no": row.order_no,
            "sku": row.sku,
            "item": names.get(row.sku, ""),
            "from_location": row.from_location,
            "to_location": row.to_location,
            "state": row.state,
            "approved_qty": row.approved_qty,
            "received_qty": row.received_qty,
            "lead_time_days": row.lead_time_days,
            "planned_transit_days": row.planned_transit_days,
            "receiver_stocked_out": None if pd.isna(row.receiver_stocked_out) else bool(row.receiver_stocked_out),
            "realised_benefit": row.realised_benefit,
            "explanation": getattr(row, expl),
        }
        for row in r.itertuples()
    ]


def network_kpis(kpis: pd.DataFrame, lang: str = "en", currency: str = "") -> list[dict[str, Any]]:
    """Network-level KPI rows (location ``*`` and category ``*``), sorted by metric, each with its
    name and value as a planner reads them (:mod:`pipelines.labels`: 65 % for a share, money with
    the ``currency`` code)."""
    if kpis.empty:
        return []
    net = kpis[(kpis["location"] == "*") & (kpis["category"] == "*")].sort_values("metric", kind="mergesort")
    return [
        {"metric": m, "value": v, "label": names.metric(m, lang), "shown": names.metric_value(m, v, lang, currency)}
        for m, v in zip(net["metric"], net["value"], strict=True)
    ]


def stage_count_rows(summary: Mapping[str, Any], lang: str = "en") -> list[dict[str, Any]]:
    """``summary['counts']`` ({stage: {table: n}} or {stage: n}) as flat rows, names translated."""
    rows: list[dict[str, Any]] = []
    counts = summary.get("counts") or {}
    if not isinstance(counts, Mapping):
        return rows
    for stage, value in counts.items():
        if isinstance(value, Mapping):
            for name, n in value.items():
                rows.append({"stage": names.stage(str(stage), lang), "name": names.table(str(name), lang), "rows": n})
        else:
            rows.append({"stage": names.stage(str(stage), lang), "name": "", "rows": value})
    return rows


def quarantined_count(summary: Mapping[str, Any], quarantine: pd.DataFrame) -> int:
    """Rows validation set aside: ``summary['quarantined']`` when given, else the quarantine rows."""
    value = summary.get("quarantined")
    if value is None:
        return int(len(quarantine))
    if isinstance(value, Mapping):  # tolerate {table: n}
        return int(sum(int(v) for v in value.values()))
    return int(value)


# --------------------------------------------------------------------------------------------
# Sections
# --------------------------------------------------------------------------------------------


def _health(policy: pd.DataFrame) -> dict[str, Any]:
    if policy.empty:
        return {"bands": [], "categories": [], "band_columns": [], "total": 0}
    counts = policy["health_band"].value_counts()
    bands = [b for b in BAND_ORDER if b in counts.index] + sorted(b for b in counts.index if b not in BAND_ORDER)
    total = int(counts.sum())
    band_rows = [{"band": b, "count": int(counts[b]), "share": counts[b] / total} for b in bands]
    cross = pd.crosstab(policy["category"], policy["health_band"]).reindex(columns=bands, fill_value=0)
    cross = cross.sort_index(kind="mergesort")
    cat_rows = [
        {"category": str(cat), "counts": [int(v) for v in row], "total": int(sum(row))}
        for cat, row in zip(cross.index, cross.to_numpy(), strict=True)
    ]
    return {"bands": band_rows, "categories": cat_rows, "band_columns": bands, "total": total}


def _data_quality(dq: pd.DataFrame, quarantine: pd.DataFrame) -> dict[str, Any]:
    failed = dq[~dq["passed"].astype(bool)] if not dq.empty else dq
    if not failed.empty:
        failed = failed.assign(_lvl=(failed["level"] != "table").astype(int)).sort_values(
            ["_lvl", "failing_rows", "table_name", "rule", "column_name"],
            ascending=[True, False, True, True, True],
            kind="mergesort",
        )
    failed_rows = (
        failed[["table_name", "rule", "column_name", "level", "observed", "failing_rows"]].to_dict("records")
        if not failed.empty
        else []
    )
    groups: list[dict[str, Any]] = []
    if not quarantine.empty:
        q = quarantine.sort_values(["table_name", "rule", "column_name", "row_number"], kind="mergesort")
        g = q.groupby(["table_name", "rule", "column_name"], sort=True, dropna=False)
        agg = g.agg(rows=("row_number", "size"), example=("value", "first")).reset_index()
        agg = agg.sort_values(["rows", "table_name", "rule", "column_name"], ascending=[False, True, True, True])
        groups = agg.astype(object).where(agg.notna(), None).to_dict("records")
    return {
        "total": int(len(dq)),
        "passed": int(dq["passed"].astype(bool).sum()) if not dq.empty else 0,
        "failed": failed_rows,
        "quarantine": groups,
    }


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    return buf.getvalue()


def kpi_trend_png(dates: pd.Series, values: np.ndarray, title: str) -> bytes:
    """A small trend chart (sparkline with the last point marked) as PNG bytes; ASCII text only,
    no metadata, so equal inputs give equal bytes. The report (both languages) and every digest
    draw the same trends: a chart is drawn once per distinct input (:func:`_trend_png`)."""
    x = tuple(pd.to_datetime(dates).astype("datetime64[ns]").to_numpy().astype("int64").tolist())
    return _trend_png(x, tuple(np.asarray(values, dtype=float).tolist()), title)


def trend_ticks(x: np.ndarray) -> tuple[np.ndarray | None, tuple[np.datetime64, np.datetime64] | None]:
    """The x ticks of a trend chart: the run dates themselves when there are at most four (None:
    let matplotlib place them), and, for a single night, limits of three days either side so the
    one point sits in the middle under its own date."""
    distinct = np.unique(np.asarray(x, dtype="datetime64[ns]"))
    if len(distinct) > 4:
        return None, None
    if len(distinct) == 1:
        day = np.timedelta64(1, "D")
        return distinct, (distinct[0] - 3 * day, distinct[0] + 3 * day)
    return distinct, None


@functools.lru_cache(maxsize=256)
def _trend_png(x_ns: tuple[int, ...], ys: tuple[float, ...], title: str) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.dates import AutoDateLocator, DateFormatter
    from matplotlib.figure import Figure

    fig = Figure(figsize=(3.0, 1.2), dpi=96)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    x = pd.to_datetime(np.asarray(x_ns, dtype="int64")).to_numpy()
    values = np.asarray(ys, dtype=float)
    ax.plot(x, values, color="#08519c", linewidth=1.4, marker="o" if len(x) < 3 else None, markersize=3)
    ok = ~np.isnan(values)
    if ok.any():
        last = np.flatnonzero(ok)[-1]
        ax.plot([x[last]], [values[last]], "o", color="#b00020", markersize=4)
    # the metric is named beside the chart, in the reader's language; the ticks are the real run
    # dates (a single night: that date, centred)
    ax.xaxis.set_major_formatter(DateFormatter("%m-%d"))
    ax.tick_params(labelsize=6)
    ticks, xlim = trend_ticks(x)
    if ticks is None:
        ax.xaxis.set_major_locator(AutoDateLocator(minticks=2, maxticks=4))
    else:
        ax.set_xticks(ticks)
    if xlim is not None:
        ax.set_xlim(xlim[0], xlim[1])  # type: ignore[arg-type]  # matplotlib takes datetime64 on a date axis
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    fig.tight_layout(pad=0.3)
    return _png(fig)


def kpi_trends(
    history: pd.DataFrame | None, run_date: date, metrics: tuple[str, ...] = TREND_METRICS, days: int = TREND_DAYS
) -> list[dict[str, Any]]:
    """Network KPI trends (location and category ``*``) up to ``run_date``: one dict per metric
    with any value in the last ``days`` run dates: metric, latest value, the dates and values, and
    the chart as PNG bytes (``png``). ``history`` is ``kpis`` rows of several run dates."""
    if history is None or history.empty:
        return []
    net = history[(history["location"] == "*") & (history["category"] == "*")]
    net = net[net["run_date"] <= pd.Timestamp(run_date)]
    dates = sorted(net["run_date"].unique())[-days:]
    net = net[net["run_date"].isin(dates)]
    out: list[dict[str, Any]] = []
    for metric in metrics:
        m = net[net["metric"] == metric].sort_values("run_date", kind="mergesort")
        values = m["value"].to_numpy(dtype=float)
        if m.empty or np.isnan(values).all():
            continue
        latest = float(values[-1]) if not np.isnan(values[-1]) else None
        out.append(
            {
                "metric": metric,
                "latest": latest,
                "points": int((~np.isnan(values)).sum()),
                "png": kpi_trend_png(m["run_date"], values, metric),
            }
        )
    return out


def forecast_chart_png(
    dates: pd.Series, mean: np.ndarray, p50: np.ndarray, p90: np.ndarray, title: str, actual: pd.DataFrame | None = None
) -> str:
    """A small forecast chart as base64 PNG: the mean line and the p50-p90 band (ASCII text only).

    Drawn on a bare :class:`matplotlib.figure.Figure` with the Agg canvas (no pyplot global state,
    safe in worker threads). The PNG carries no software/time metadata, so equal inputs give
    equal bytes.
    """

    def ns(v: Any) -> tuple[int, ...]:
        return tuple(pd.to_datetime(v).astype("datetime64[ns]").to_numpy().astype("int64").tolist())

    def fl(v: Any) -> tuple[float, ...]:
        return tuple(np.asarray(v, dtype=float).tolist())

    act = actual if actual is not None and len(actual) > 0 else None
    return _forecast_png(
        ns(dates),
        fl(mean),
        fl(p50),
        fl(p90),
        title,
        ns(act["date"]) if act is not None else (),
        fl(act["units"]) if act is not None else (),
    )


@functools.lru_cache(maxsize=64)
def _forecast_png(
    x_ns: tuple[int, ...],
    mean_: tuple[float, ...],
    p50_: tuple[float, ...],
    p90_: tuple[float, ...],
    title: str,
    ax_ns: tuple[int, ...],
    units_: tuple[float, ...],
) -> str:
    """:func:`forecast_chart_png` drawn once per distinct input: the report's two languages share
    the charts (their titles are codes)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.dates import DateFormatter
    from matplotlib.figure import Figure

    mean, p50, p90 = (np.asarray(v, dtype=float) for v in (mean_, p50_, p90_))
    actual = (
        pd.DataFrame({"date": pd.to_datetime(np.asarray(ax_ns, dtype="int64")), "units": np.asarray(units_)})
        if ax_ns
        else None
    )
    fig = Figure(figsize=(7.0, 2.4), dpi=96)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    x = pd.to_datetime(np.asarray(x_ns, dtype="int64")).to_numpy()
    ax.fill_between(x, p50, p90, color="#9ecae1", alpha=0.6, linewidth=0, label="p50-p90")
    ax.plot(x, mean, color="#08519c", linewidth=1.6, label="mean")
    peaks = [p90, mean]
    if actual is not None and len(actual):
        ax.plot(
            pd.to_datetime(actual["date"]).to_numpy(),
            actual["units"].to_numpy(dtype=float),
            color="#222222",
            linewidth=1.2,
            label="actual",
        )
        peaks.append(actual["units"].to_numpy(dtype=float))
    # title and legend are the page's, in the reader's language (the image has no text but numbers)
    top = float(np.nanmax(np.concatenate(peaks))) if len(mean) else 1.0
    ax.set_ylim(bottom=0, top=max(top, 1e-9) * 1.1)
    ax.xaxis.set_major_formatter(DateFormatter("%m-%d"))
    ax.tick_params(labelsize=8)
    ax.grid(True, axis="y", linewidth=0.4, alpha=0.6)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    fig.tight_layout()
    return base64.b64encode(_png(fig)).decode("ascii")


def _daily_actuals(sales: pd.DataFrame | None, run_date: date, days: int = ACTUAL_DAYS) -> pd.DataFrame | None:
    """Units sold (net of returns) per SKU, location and day over the ``days`` days before the run
    date, every day present (0 when nothing sold); None without sales."""
    if sales is None or sales.empty:
        return None
    rd = pd.Timestamp(run_date)
    win = sales[(sales["date"] >= rd - pd.Timedelta(days=days)) & (sales["date"] < rd)]
    return win.assign(units=win["quantity"].astype(float) - win["returns"].astype(float))[
        ["sku", "location", "date", "units"]
    ]


def _forecast(
    forecasts: pd.DataFrame,
    lang: str,
    items: pd.DataFrame | None,
    locations: pd.DataFrame | None,
    actuals: pd.DataFrame | None = None,
    run_date: date | None = None,
) -> list[dict[str, Any]]:
    if forecasts.empty:
        return []
    fc = forecasts[forecasts["horizon"] <= FORECAST_DAYS]
    if fc.empty:
        return []
    vol = fc.groupby(["sku", "location"], sort=True)["mean"].sum().reset_index()
    top = vol.sort_values(["mean", "sku", "location"], ascending=[False, True, True], kind="mergesort").head(
        FORECAST_SERIES
    )
    inames, lnames = item_names(items, lang), location_names(locations)
    charts: list[dict[str, Any]] = []
    for sku, loc, total in zip(top["sku"], top["location"], top["mean"], strict=True):
        s = fc[(fc["sku"] == sku) & (fc["location"] == loc)].sort_values("target_date", kind="mergesort")
        act = None
        if actuals is not None and run_date is not None:
            days = pd.date_range(pd.Timestamp(run_date) - pd.Timedelta(days=ACTUAL_DAYS), periods=ACTUAL_DAYS, freq="D")
            one = actuals[(actuals["sku"] == sku) & (actuals["location"] == loc)].groupby("date")["units"].sum()
            act = pd.DataFrame({"date": days, "units": one.reindex(days, fill_value=0.0).to_numpy()})
        png = forecast_chart_png(
            s["target_date"],
            s["mean"].to_numpy(dtype=float),
            s["p50"].to_numpy(dtype=float),
            s["p90"].to_numpy(dtype=float),
            title=f"{sku} @ {loc}".encode("ascii", "replace").decode("ascii"),
            actual=act,
        )
        charts.append(
            {
                "sku": sku,
                "location": loc,
                "item": inames.get(sku),
                "location_name": lnames.get(loc),
                "total": float(total),
                "peak_p90": float(s["p90"].max()),
                "models": ", ".join(sorted(s["model"].astype("str").unique())),
                "png": png,
            }
        )
    return charts


def render_report(frames: dict[str, pd.DataFrame], summary: dict, lang: str = "en") -> str:
    """The planner report of one run as a self-contained HTML document.

    ``frames`` holds the run's output tables by contract name (any may be missing or empty) and
    optionally the ``items`` and ``locations`` input tables (names next to codes), ``sales`` (the
    actual units drawn on the forecast charts) and ``kpi_history`` (``kpis`` rows of past run
    dates, for the KPI trend charts). ``summary`` carries ``run_date``, ``run_id``, ``counts``, ``quarantined``, ``notes``.
    """
    currency = str(summary.get("currency") or "")
    t = labels(lang, currency)
    run_date = run_date_of(summary, frames)
    items, locations = frames.get("items"), frames.get("locations")
    transfers = sort_transfers(frame(frames, "transfers"))
    purchases = sort_purchases(frame(frames, "purchase_proposals"))
    alerts = sort_alerts(frame(frames, "alerts"))
    policy = frame(frames, "inventory_policy")
    kpis = frame(frames, "kpis")
    dq = frame(frames, "dq_results")
    quarantine = frame(frames, "quarantine")
    forecasts = frame(frames, "forecasts")

    run_id = summary.get("run_id")
    if not run_id:
        for df in (transfers, alerts, policy, forecasts, kpis, dq):
            if len(df):
                run_id = str(df["run_id"].iloc[0])
                break
    severity_counts = alerts["severity"].value_counts() if len(alerts) else pd.Series(dtype="int64")
    headline = {
        "transfers_total": int(len(transfers)),
        "transfers_planner": int((transfers["approval_tier"] == "planner").sum()),
        "transfers_auto": int((transfers["approval_tier"] == "auto").sum()),
        "net_benefit": float((transfers["expected_benefit"] - transfers["transfer_cost"]).sum()),
        "alerts_total": int(len(alerts)),
        "alerts_high": int(severity_counts.get("high", 0)),
        "value_at_risk": float(alerts["value_at_risk"].sum()),
        "under_stocked": int((policy["health_band"] == "under").sum()),
        "quarantined": quarantined_count(summary, quarantine),
    }
    notes = [str(n) for n in (summary.get("notes") or [])]
    ctx = {
        "lang": lang,
        "names": names,
        "t": t,
        "run_date": run_date.isoformat(),
        "run_day": names.long_day(run_date, lang),
        "run_id": run_id or "",
        "headline": headline,
        "stage_counts": stage_count_rows(summary, lang),
        "notes": notes,
        "kpis": network_kpis(kpis, lang, currency),
        "transfers": transfer_rows(transfers.head(MAX_REPORT_ROWS), lang, items, locations),
        "transfers_total": int(len(transfers)),
        "purchases": purchase_rows(purchases.head(MAX_REPORT_ROWS), lang, items, locations),
        "purchases_total": int(len(purchases)),
        "alerts": alert_rows(alerts.head(MAX_REPORT_ROWS), lang, items, locations),
        "today": todays_actions(alerts, transfers, lang, items, locations),
        "noise": noise_line(summary, lang),
        "review": review_rows(frame(frames, "transfer_review").head(MAX_REPORT_ROWS), lang, items),
        "review_total": int(len(frame(frames, "transfer_review"))),
        "lanes_flagged": [
            getattr(r, "explanation_zh" if lang == "zh-CN" else "explanation_en")
            for r in frame(frames, "lane_review").itertuples()
            if bool(r.flagged)
        ],
        "alerts_total": int(len(alerts)),
        "health": _health(policy),
        "dq": _data_quality(dq, quarantine),
        "charts": _forecast(forecasts, lang, items, locations, _daily_actuals(frames.get("sales"), run_date), run_date),
        "has_actuals": frames.get("sales") is not None and len(frames["sales"]) > 0,
        "actual_days": ACTUAL_DAYS,
        "trends": [
            {
                **tr,
                "png": base64.b64encode(tr["png"]).decode("ascii"),
                "label": names.metric(tr["metric"], lang),
                "shown": names.metric_value(tr["metric"], tr["latest"], lang, currency),
            }
            for tr in kpi_trends(frames.get("kpi_history"), run_date)
        ],
        "trend_days": TREND_DAYS,
        "forecast_days": FORECAST_DAYS,
        "section_ids": SECTION_IDS,
        "fold": FOLD_ROWS,
    }
    return _ENV.get_template("report.html").render(**ctx)


def report_path(out_dir: Path, run_date: date, lang: str = "en") -> Path:
    """``report_<date>.html`` for English, ``report_<date>.<lang>.html`` for another language."""
    suffix = "" if lang == "en" else f".{lang}"
    return Path(out_dir) / f"report_{run_date.isoformat()}{suffix}.html"


def write_report(frames: dict[str, pd.DataFrame], summary: dict, out_dir: Path, lang: str = "en") -> Path:
    """Render the report and write it atomically (temporary file, then rename); returns the path."""
    html = render_report(frames, summary, lang)
    target = report_path(Path(out_dir), run_date_of(summary, frames), lang)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(html, encoding="utf-8")
    os.replace(tmp, target)
    return target


def report_command(run_date: date | str, config: Any = None) -> list[Path]:
    """Rebuild the report of a published ``run_date`` from the reporting database (English and
    zh-CN) into ``<output_dir>/<run_date>/``; returns the paths. What ``tiaobo report --date D`` runs.

    ``config``: a :class:`pipelines.config.Config`, a YAML path or None (embedded defaults). Every
    output table is read for the date from the database, the KPI history of the last
    :data:`TREND_DAYS` days for the trends, the summary from ``published_runs`` and the run log;
    item and location names and actual sales come from the run's staging folder when its files
    are still there (else codes only and forecast-only charts). Raises ``LookupError`` when the
    date is not published.
    """
    from pipelines import reporting
    from pipelines.config import Config, load_config
    from pipelines.context import RunContext

    cfg = config if isinstance(config, Config) else load_config(config)
    run_date = date.fromisoformat(run_date) if isinstance(run_date, str) else run_date
    url = cfg.reporting_url()
    reporting.migrate(url)
    published = reporting.read_published_runs(url)
    row = published[published["run_date"] == pd.Timestamp(run_date)]
    if row.empty:
        dates = ", ".join(f"{d:%Y-%m-%d}" for d in published["run_date"].tail(5)) or "none"
        raise LookupError(f"report: {run_date} is not published in the reporting database (latest: {dates})")
    frames: dict[str, Any] = {name: reporting.read_table(url, name, run_date) for name in contract.OUTPUT_TABLES}
    frames["kpi_history"] = reporting.read_kpi_history(url, run_date, TREND_DAYS)
    ctx = RunContext(cfg, run_date)
    for name in ("items", "locations", "sales"):
        frames[name] = ctx.read(name) if ctx.exists(name) else None
    import json

    counts = json.loads(str(row["counts_json"].iloc[0]) or "{}")
    log_ = reporting.read_run_log(url, run_date)
    notes = [
        f"{r.status} ({r.stage}): {r.message}"
        for r in log_.itertuples()
        if r.status in ("failed", "stopped", "email_failed") and r.message
    ]
    summary = {
        "run_date": run_date.isoformat(),
        "run_id": str(row["run_id"].iloc[0]),
        "counts": {"published": counts},
        "quarantined": int(frames["quarantine"][["table_name", "row_number"]].drop_duplicates().shape[0]),
        "notes": notes,
        "currency": ctx.cfg.currency,
    }
    return [write_report(frames, summary, ctx.output_dir, lang) for lang in LANGS]
