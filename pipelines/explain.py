"""Planner-facing sentences in English and Chinese (zh-CN), built from the numbers.

Every explanation of a lead-time demand row, an inventory-policy row, an alert or a transfer is
composed here, so the two languages stay side by side and use the same numbers. The formatting
helpers turn numeric / date columns into text columns and :func:`text` concatenates text columns
and literals column-wise (pandas string concatenation over all rows at once, no Python loop over
rows in the callers); :func:`render` fills a readable ``{placeholder}`` template the same way.

Each ``*_sentences`` function takes a frame with the columns it names and returns the pair
``(explanation_en, explanation_zh)`` as string Series aligned with the frame's index.

Number style: thousands separators, at most the decimals asked for, trailing zeros dropped
("1,234.5", "12", "6.2"); money with two decimals; dates as ISO ``YYYY-MM-DD``; a missing number
prints as "n/a" (Chinese "无").
"""

from __future__ import annotations

import math
from string import Formatter
from typing import TypeAlias

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

Part: TypeAlias = pd.Series | str


def _fmt_number(x: object, decimals: int, missing: str) -> str:
    if x is None or pd.isna(x):  # type: ignore[arg-type]
        return missing
    v = float(x)  # type: ignore[arg-type]
    if math.isinf(v):
        return "∞"
    t = f"{v:,.{decimals}f}"
    if "." in t:
        t = t.rstrip("0").rstrip(".")
    return "0" if t == "-0" else t


def _as_text(values: pa.Array | pa.ChunkedArray, index: pd.Index) -> pd.Series:
    return pd.Series(pd.array(values, dtype="str"), index=index)


def _arrow_text(part: pd.Series, index: pd.Index) -> pa.Array | pa.ChunkedArray:
    if not part.index.equals(index):
        part = part.reindex(index)
    return pa.array(part.astype("str"), type=pa.large_string(), from_pandas=True)


def _format_unique(values: pd.Series, decimals: int, fmt) -> pd.Series:  # type: ignore[no-untyped-def]
    """Format every row through ``fmt`` called once per distinct value rounded to ``decimals``
    (the text depends on the rounded value only), so a million rows cost a few thousand calls."""
    s = pd.Series(values)
    arr = pd.to_numeric(s, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    with np.errstate(invalid="ignore"):
        rounded = np.round(arr, decimals)
    codes, uniq = pd.factorize(rounded, use_na_sentinel=False)
    texts = pa.array([fmt(u) for u in uniq], type=pa.large_string())
    return _as_text(pc.take(texts, pa.array(codes)), s.index)


def num(values: pd.Series, decimals: int = 1, missing: str = "n/a") -> pd.Series:
    """Numbers as text: thousands separators, up to ``decimals`` decimals, trailing zeros dropped."""
    return _format_unique(values, decimals, lambda x: _fmt_number(x, decimals, missing))


def money(values: pd.Series, missing: str = "n/a") -> pd.Series:
    """Money as text with two decimals and thousands separators."""
    return _format_unique(values, 2, lambda x: missing if pd.isna(x) else f"{float(x):,.2f}")


def pct(values: pd.Series) -> pd.Series:
    """Shares (0.95) as percentages ("95%", "97.5%")."""
    return num(pd.Series(values) * 100.0, 1) + "%"


def day(values: pd.Series, missing: str = "", lang: str = "en") -> pd.Series:
    """Dates as text: ``YYYY-MM-DD`` in the English sentences, ``2026年3月3日`` in the Chinese ones
    (``lang="zh"``); missing dates give ``missing``."""
    s = pd.to_datetime(pd.Series(values))
    if not lang.startswith("zh"):
        return s.dt.strftime("%Y-%m-%d").fillna(missing).astype("str")
    part = lambda x: x.astype("Int64").astype("str")  # noqa: E731
    out = part(s.dt.year) + "年" + part(s.dt.month) + "月" + part(s.dt.day) + "日"
    return out.where(s.notna(), missing).astype("str")


def text(*parts: Part) -> pd.Series:
    """Concatenate string Series and literals column-wise (at least one part must be a Series;
    Series are aligned on the first one's index). One vectorised Arrow call for all rows."""
    series = [p for p in parts if isinstance(p, pd.Series)]
    if not series:
        raise ValueError("text() needs at least one Series part")
    index = series[0].index
    cols = [
        _arrow_text(p, index) if isinstance(p, pd.Series) else pa.scalar(str(p), type=pa.large_string()) for p in parts
    ]
    return _as_text(pc.binary_join_element_wise(*cols, pa.scalar("", type=pa.large_string())), index)


def render(template: str, **fields: Part) -> pd.Series:
    """Fill ``{name}`` placeholders of ``template`` with text columns (or literals), row-wise.

    ``render("On hand {oh}, {mu}/day", oh=num(df.on_hand, 0), mu=num(df.mu))`` gives one sentence
    per row; placeholders take no format spec (format the numbers with :func:`num` and friends).
    """
    parts: list[Part] = []
    for literal, name, spec, conv in Formatter().parse(template):
        if literal:
            parts.append(literal)
        if name is not None:
            if spec or conv:
                raise ValueError(f"render(): format the value of {{{name}}} before, not in the template")
            parts.append(fields[name])
    return text(*parts)


def choose(condition: pd.Series, when_true: Part, when_false: Part) -> pd.Series:
    """Row-wise choice between two texts (Series aligned with ``condition``, or literals)."""
    index = condition.index

    def arrow(part: Part) -> pa.Array | pa.ChunkedArray | pa.Scalar:
        if isinstance(part, pd.Series):
            return _arrow_text(part, index)
        return pa.scalar(str(part), type=pa.large_string())

    cond = pa.array(condition.to_numpy(dtype=bool))
    out = pc.if_else(cond, arrow(when_true), arrow(when_false))
    if isinstance(out, pa.Scalar):  # both literals and no row
        out = pa.array([], type=pa.large_string())
    return _as_text(out, index)


# --------------------------------------------------------------------------------------------
# Inventory policy
# --------------------------------------------------------------------------------------------

_BAND_EN = {"under": "under-stocked", "healthy": "healthy", "over": "over-stocked", "no_demand": "no demand"}
_BAND_ZH = {"under": "库存不足", "healthy": "库存健康", "over": "库存过多", "no_demand": "无需求"}
_PATTERN_EN = {
    "smooth": "smooth",
    "erratic": "erratic",
    "intermittent": "intermittent",
    "lumpy": "lumpy",
    "no_demand": "no recent sales",
}
_PATTERN_ZH = {"smooth": "平稳", "erratic": "波动", "intermittent": "间歇", "lumpy": "块状", "no_demand": "近期无销售"}
_METHOD_EN = {
    "normal": "normal approximation",
    "poisson": "Poisson lead-time demand",
    "negbin": "negative binomial lead-time demand",
    "zero": "no demand",
}
_METHOD_ZH = {"normal": "正态近似", "poisson": "泊松提前期需求", "negbin": "负二项提前期需求", "zero": "无需求"}

_POLICY_EN = (
    "Class {abc}{xyz}, {pat} demand. Forecast {mu}/day (std {sd}), lead time {lt} ± {lts} days{dflt} + review {rp}"
    " days, service level {sl}{fr}: safety stock {ss} ({meth}{cap}), reorder at {rop}, order up to {out}."
    " Available {avail}{oo} = {cover} days of cover: {band} (band {lo}–{hi} days).{later}"
)
_POLICY_ZH = (
    "分类 {abc}{xyz}，需求{pat}。预测日销 {mu}（标准差 {sd}），补货提前期 {lt} ± {lts} 天{dflt}，检查周期 {rp} 天，"
    "服务水平 {sl}{fr}：安全库存 {ss}（{meth}{cap}），再订货点 {rop}，最高库存 {out}。"
    "可用库存 {avail}{oo}，可售 {cover} 天：{band}（健康区间 {lo}–{hi} 天）。{later}"
)
_OPTIMISED_EN = (
    " Reorder point and order quantity {q} chosen by the class {abc} least-stock-value plan for a {t} {meas}"
    " (this item {x} in the model){miss}."
)
_OPTIMISED_ZH = "再订货点与订购量 {q} 由 {abc} 类库存金额最小方案按{meas} {t} 选定（本品模型{meas2} {x}）{miss}。"
_MEASURE_EN = {"fill_rate": "fill rate", "cycle_service": "cycle service level"}
_MEASURE_ZH = {"fill_rate": "满足率", "cycle_service": "周期服务水平"}
_NO_DEMAND_EN = (
    "No demand forecast (nothing sold in the forecast window): available {avail}{oo}, no safety stock needed;"
    " lead time {lt} days{dflt}.{later}"
)
_NO_DEMAND_ZH = "无需求预测（预测窗口内无销售）：可用库存 {avail}{oo}，无需安全库存；补货提前期 {lt} 天{dflt}。{later}"


def _opt_col(df: pd.DataFrame, name: str, default: object) -> pd.Series:
    return df[name] if name in df.columns else pd.Series(default, index=df.index)


def policy_sentences(df: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """Columns: demand_mean, demand_std, lead_time_days, lead_time_std_days, lead_time_defaulted,
    review_period_days, service_level, safety_stock, reorder_point, order_up_to, available,
    days_of_cover, health_band, min_cover_days, max_cover_days, abc_class; optional: xyz_class,
    demand_pattern, ss_method, ss_capped, fill_rate, on_order, on_order_later."""
    f = {
        "mu": num(df["demand_mean"], 1),
        "sd": num(df["demand_std"], 1),
        "lt": num(df["lead_time_days"], 1),
        "lts": num(df["lead_time_std_days"], 1),
        "rp": num(df["review_period_days"], 1),
        "sl": pct(df["service_level"]),
        "ss": num(df["safety_stock"], 0),
        "rop": num(df["reorder_point"], 0),
        "out": num(df["order_up_to"], 0),
        "avail": num(df["available"], 0),
        "cover": num(df["days_of_cover"], 0),
        "lo": num(df["min_cover_days"], 0),
        "hi": num(df["max_cover_days"], 0),
        "abc": df["abc_class"].astype("str"),
        "xyz": _opt_col(df, "xyz_class", "").astype("str"),
    }
    defaulted = df["lead_time_defaulted"].astype(bool)
    fill = pd.to_numeric(_opt_col(df, "fill_rate", np.nan), errors="coerce")
    has_fill = fill.notna()
    capped = _opt_col(df, "ss_capped", False).astype(bool)
    pattern = _opt_col(df, "demand_pattern", "smooth").astype("str")
    method = _opt_col(df, "ss_method", "normal").astype("str")
    ordered = pd.to_numeric(_opt_col(df, "on_order", 0.0), errors="coerce").fillna(0.0)
    later = pd.to_numeric(_opt_col(df, "on_order_later", 0.0), errors="coerce").fillna(0.0)
    oo, lt_oo = num(ordered, 0), num(later, 0)
    en = {
        **f,
        "oo": choose(
            ordered > 0, render(" (including {x} on purchase orders due within lead time + review)", x=oo), ""
        ),
        "later": choose(later > 0, render(" {x} more on purchase orders due later (not counted).", x=lt_oo), ""),
        "band": df["health_band"].map(_BAND_EN).astype("str"),
        "dflt": choose(defaulted, " (default, none recorded)", ""),
        "pat": pattern.map(_PATTERN_EN).fillna(pattern).astype("str"),
        "meth": method.map(_METHOD_EN).fillna(method).astype("str"),
        "cap": choose(capped, ", capped by the policy's days of cover", ""),
        "fr": choose(has_fill, render(", fill rate {x}", x=pct(fill)), ""),
    }
    zh = {
        **f,
        "oo": choose(ordered > 0, render("（含提前期与检查周期内到货的采购订单 {x}）", x=oo), ""),
        "later": choose(later > 0, render("另有采购订单 {x} 件在其后到货（未计入）。", x=lt_oo), ""),
        "band": df["health_band"].map(_BAND_ZH).astype("str"),
        "dflt": choose(defaulted, "（无记录，使用默认值）", ""),
        "pat": pattern.map(_PATTERN_ZH).fillna(pattern).astype("str"),
        "meth": method.map(_METHOD_ZH).fillna(method).astype("str"),
        "cap": choose(capped, "，受策略可售天数上下限约束", ""),
        "fr": choose(has_fill, render("，满足率 {x}", x=pct(fill)), ""),
    }
    has = pd.Series(df["demand_mean"].to_numpy() > 0, index=df.index)
    sentence_en = choose(has, render(_POLICY_EN, **en), render(_NO_DEMAND_EN, **en))
    sentence_zh = choose(has, render(_POLICY_ZH, **zh), render(_NO_DEMAND_ZH, **zh))
    if "policy_method" not in df.columns:
        return sentence_en, sentence_zh
    optimised = has & (df["policy_method"].astype("str") == "optimised")
    measure = _opt_col(df, "opt_measure", "fill_rate").astype("str")
    fill_measure = measure == "fill_rate"
    model = choose(fill_measure, pct(df["model_fill_rate"]), pct(df["model_cycle_service"]))
    reached = _opt_col(df, "opt_group_reached", True).astype(bool)
    o = {"q": num(df["order_quantity"], 0), "abc": f["abc"], "t": pct(df["opt_target"]), "x": model}
    extra_en = render(
        _OPTIMISED_EN,
        **o,
        meas=measure.map(_MEASURE_EN).fillna(measure).astype("str"),
        miss=choose(reached, "", "; the class could not reach its target, this is its best plan"),
    )
    meas_zh = measure.map(_MEASURE_ZH).fillna(measure).astype("str")
    extra_zh = render(
        _OPTIMISED_ZH, **o, meas=meas_zh, meas2=meas_zh, miss=choose(reached, "", "；该类无法达到目标，此为最优方案")
    )
    return (
        choose(optimised, render("{a}{b}", a=sentence_en, b=extra_en), sentence_en),
        choose(optimised, render("{a}{b}", a=sentence_zh, b=extra_zh), sentence_zh),
    )


# --------------------------------------------------------------------------------------------
# Lead-time demand
# --------------------------------------------------------------------------------------------

_LEAD_EN = (
    "Over the {lt}-day lead time{dflt}: {mu} units expected (daily forecasts of {model} summed{flat})."
    " Demand stays at or below {p50} units with 50% probability, {p90} with 90%, {p95} with 95% and {p99}"
    " with 99% (negative binomial, variance {phi} times the mean)."
)
_LEAD_ZH = (
    "补货提前期 {lt} 天{dflt}内：预计需求 {mu} 件（{model} 模型的日预测累加{flat}）。"
    "需求不超过 {p50} 件的概率为 50%，不超过 {p90} 件为 90%，{p95} 件为 95%，{p99} 件为 99%"
    "（负二项分布，方差为均值的 {phi} 倍）。"
)
_LEAD_ZERO_EN = "No sale recorded: lead-time demand over the {lt}-day lead time{dflt} is forecast as 0."
_LEAD_ZERO_ZH = "无销售记录：补货提前期 {lt} 天{dflt}内需求预测为 0。"


def lead_time_sentences(df: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """Columns: lead_time_days, lead_time_defaulted, mean, p50, p90, p95, p99, dispersion, model,
    horizon_days (days the daily forecast covers; a longer lead time holds its last day's rate)."""
    f = {
        "lt": num(df["lead_time_days"], 0),
        "mu": num(df["mean"], 1),
        "p50": num(df["p50"], 0),
        "p90": num(df["p90"], 0),
        "p95": num(df["p95"], 0),
        "p99": num(df["p99"], 0),
        "phi": num(df["dispersion"], 2),
        "model": df["model"].astype("str"),
    }
    defaulted = df["lead_time_defaulted"].astype(bool)
    beyond = pd.Series(df["lead_time_days"].to_numpy() > df["horizon_days"].to_numpy(), index=df.index)
    h = num(df["horizon_days"], 0)
    en = {
        **f,
        "dflt": choose(defaulted, " (default, none recorded)", ""),
        "flat": choose(beyond, render("; days after its {h}-day horizon at its last day's rate", h=h), ""),
    }
    zh = {
        **f,
        "dflt": choose(defaulted, "（无记录，使用默认值）", ""),
        "flat": choose(beyond, render("；超出 {h} 天预测期的天数按最后一天的日销计", h=h), ""),
    }
    zero = pd.Series(df["model"].astype("str").to_numpy() == "zero_no_sales", index=df.index)
    return (
        choose(zero, render(_LEAD_ZERO_EN, **en), render(_LEAD_EN, **en)),
        choose(zero, render(_LEAD_ZERO_ZH, **zh), render(_LEAD_ZH, **zh)),
    )


# --------------------------------------------------------------------------------------------
# Alerts
# --------------------------------------------------------------------------------------------

_STOCKOUT_EN = (
    "On hand {oh} (available {av}), forecast {mu}/day, lead time {lt} days: stockout expected on {ev},"
    " {gap} days before the next receipt ({rc}); {units} units short over the lead time."
)
_STOCKOUT_ZH = (
    "现有库存 {oh}（可用 {av}），预测日销 {mu}，补货提前期 {lt} 天：预计 {ev} 断货，比下次到货（{rc}）早 {gap} 天；"
    "提前期内缺口 {units} 件。"
)


def stockout_sentences(df: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """Columns: on_hand, available, demand_mean, lead_time_days, event_date, receipt_date,
    days_before_receipt, units."""
    f = {
        "oh": num(df["on_hand"], 0),
        "av": num(df["available"], 0),
        "mu": num(df["demand_mean"], 1),
        "lt": num(df["lead_time_days"], 1),
        "ev": day(df["event_date"]),
        "rc": day(df["receipt_date"]),
        "gap": num(df["days_before_receipt"], 0),
        "units": num(df["units"], 0),
    }
    z = {**f, "ev": day(df["event_date"], lang="zh"), "rc": day(df["receipt_date"], lang="zh")}
    en, zh = render(_STOCKOUT_EN, **f), render(_STOCKOUT_ZH, **z)
    if "plan_reason" in df.columns:
        p_en, p_zh = plan_sentences(df, "stockout_risk")
        en, zh = text(en, " ", p_en), text(zh, p_zh)
    return en, zh


_SLOW_EN = (
    "On hand {oh} ({val} at cost) and no sale in the last {n} days: {last}."
    " Promote or transfer to a location that sells it."
)
_SLOW_ZH = "现有库存 {oh} 件（成本 {val}），近 {n} 天无销售：{last}。建议促销或调拨至有销量的门店。"
_DEAD_EN = (
    "Dead stock: on hand {oh} ({val} at cost tied up) and no sale in the last {dn} days: {last}."
    " Return to the supplier, sell off or write off."
)
_DEAD_ZH = "呆滞库存：现有库存 {oh} 件（占用成本 {val}），近 {dn} 天无销售：{last}。建议退货、清仓或报废。"


def slow_mover_sentences(df: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """Columns: on_hand, value_at_risk, last_sale_date (NaT = never sold), days_since_sale,
    slow_mover_days; optional: dead (bool), dead_stock_days, history_days."""
    f = {
        "oh": num(df["on_hand"], 0),
        "val": money(df["value_at_risk"]),
        "n": num(df["slow_mover_days"], 0),
        "dn": num(df["dead_stock_days"] if "dead_stock_days" in df.columns else df["slow_mover_days"], 0),
    }
    never = df["last_sale_date"].isna()
    last, ago = day(df["last_sale_date"]), num(df["days_since_sale"], 0)
    if "history_days" in df.columns:
        hist = num(df["history_days"], 0)
        never_en = render("no sale recorded in {h} days of history", h=hist)
        never_zh = render("{h} 天销售记录内无销售", h=hist)
    else:
        never_en, never_zh = pd.Series("no sale recorded", index=df.index), pd.Series("无销售记录", index=df.index)
    last_en = choose(never, never_en, render("last sale on {d}, {n} days ago", d=last, n=ago))
    last_zh = choose(
        never, never_zh, render("最近一次销售于 {d}（{n} 天前）", d=day(df["last_sale_date"], lang="zh"), n=ago)
    )
    dead = df["dead"].astype(bool) if "dead" in df.columns else pd.Series(False, index=df.index)
    return (
        choose(dead, render(_DEAD_EN, **f, last=last_en), render(_SLOW_EN, **f, last=last_en)),
        choose(dead, render(_DEAD_ZH, **f, last=last_zh), render(_SLOW_ZH, **f, last=last_zh)),
    )


_EXCESS_EN = (
    "Available {av} at {mu}/day = {cover} days of cover, above the order-up-to level {out} and the {mx}-day"
    " maximum: {units} units in excess ({val} at cost). {to}"
)
_EXCESS_ZH = "可用库存 {av}，预测日销 {mu}，可售 {cover} 天，超过最高库存 {out} 及上限 {mx} 天：超额 {units} 件（成本 {val}）。{to}"


def excess_sentences(df: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """Columns: available, demand_mean, days_of_cover, order_up_to, max_cover_days, units,
    value_at_risk; optional: receivers (text "S2 (12), S3 (4)": locations short of their
    order-up-to level and the units they need, empty when none)."""
    f = {
        "av": num(df["available"], 0),
        "mu": num(df["demand_mean"], 1),
        "cover": num(df["days_of_cover"], 0),
        "out": num(df["order_up_to"], 0),
        "mx": num(df["max_cover_days"], 0),
        "units": num(df["units"], 0),
        "val": money(df["value_at_risk"]),
    }
    rec = df["receivers"].astype("str") if "receivers" in df.columns else pd.Series("", index=df.index, dtype="str")
    some = rec != ""
    if "plan_reason" in df.columns:
        to_en, to_zh = plan_sentences(df, "excess")
    else:
        to_en = choose(
            some, render("Transfer them out; could use it (units needed): {r}.", r=rec), "Transfer them out."
        )
        to_zh = choose(some, render("建议调出；可接收地点（所需件数）：{r}。", r=rec), "建议调出。")
    return render(_EXCESS_EN, **f, to=to_en), render(_EXCESS_ZH, **f, to=to_zh)


_EXPIRED_EN = "Lot {lot}: {oh} units expired on {ev} ({val} at cost). Write them off."
_EXPIRED_ZH = "批次 {lot}：{oh} 件已于 {ev} 过期（成本 {val}）。建议报废。"
_EXPIRING_EN = (
    "Lot {lot}: {oh} units expire on {ev} (in {d} days); at {mu}/day, selling older lots first, {units} units"
    " will not sell in time ({val} at cost). {act}"
)
_EXPIRING_ZH = (
    "批次 {lot}：{oh} 件将于 {ev} 过期（剩 {d} 天）；按预测日销 {mu}、先到期先出，预计 {units} 件无法及时售出"
    "（成本 {val}）。{act}"
)


def near_expiry_sentences(df: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """Columns: lot, on_hand, event_date (expiry), days_to_expiry, demand_mean, units, value_at_risk,
    expired (bool); optional: best_location / best_rate (a location selling the SKU faster, "" if
    none)."""
    f = {
        "lot": df["lot"].astype("str"),
        "oh": num(df["on_hand"], 0),
        "ev": day(df["event_date"]),
        "d": num(df["days_to_expiry"], 0),
        "mu": num(df["demand_mean"], 1),
        "units": num(df["units"], 0),
        "val": money(df["value_at_risk"]),
    }
    z = {**f, "ev": day(df["event_date"], lang="zh")}
    expired = df["expired"].astype(bool)
    best = df["best_location"].astype("str") if "best_location" in df.columns else pd.Series("", index=df.index)
    rate = num(df["best_rate"], 1) if "best_rate" in df.columns else pd.Series("", index=df.index)
    faster = best != ""
    act_en = choose(
        faster,
        render("Transfer to {b}, which sells {r}/day, or promote.", b=best, r=rate),
        "Promote it; no other location sells it faster.",
    )
    act_zh = choose(
        faster, render("建议调拨至 {b}（日销 {r}）或促销。", b=best, r=rate), "建议促销；其他地点的销售均不比本地快。"
    )
    if "plan_reason" in df.columns:
        act_en, act_zh = plan_sentences(df, "near_expiry")
    return (
        choose(expired, render(_EXPIRED_EN, **f), render(_EXPIRING_EN, **f, act=act_en)),
        choose(expired, render(_EXPIRED_ZH, **z), render(_EXPIRING_ZH, **z, act=act_zh)),
    )


# --------------------------------------------------------------------------------------------
# Alerts against the night's transfer plan (pipelines.alerts.reconcile_with_plan)
# --------------------------------------------------------------------------------------------

#: (alert type, plan_reason) -> (English, Chinese); see pipelines.alerts for the reasons
_PLAN: dict[tuple[str, str], tuple[str, str]] = {
    ("stockout_risk", "covered"): (
        "The transfer plan covers it: {pu} units from {pl}, first arriving {pa}. Approve the transfer.",
        "调拨计划已覆盖：从 {pl} 调入 {pu} 件，最早 {pa} 到货。请批准该调拨。",
    ),
    ("stockout_risk", "partly_covered"): (
        "The transfer plan brings {pu} of the {units} units short from {pl}, first arriving {pa}; expedite the"
        " purchase order for the rest.",
        "调拨计划从 {pl} 调入缺口 {units} 件中的 {pu} 件，最早 {pa} 到货；其余请加急采购。",
    ),
    ("stockout_risk", "no_donor"): (
        "No transfer: no other location has stock above its own reorder point. Expedite the purchase order.",
        "无调拨：其他地点的库存均未高于自身再订货点。请加急采购。",
    ),
    ("stockout_risk", "no_lane"): (
        "No transfer: no lane reaches this location from one with stock to spare ({cand}). Expedite the purchase"
        " order.",
        "无调拨：有富余库存的地点（{cand}）均无到本地点的线路。请加急采购。",
    ),
    ("stockout_risk", "lane_too_slow"): (
        "No transfer: the fastest lane from a location with stock to spare takes {tt} days, no sooner than a"
        " purchase order ({lt} days). Expedite the purchase order.",
        "无调拨：从有富余库存地点出发最快的线路需 {tt} 天，不快于采购（{lt} 天）。请加急采购。",
    ),
    ("stockout_risk", "not_worth_it"): (
        "No transfer: moving stock here from {cand} would cost more than the margin it saves (freight and the"
        " lane's shipment cost), or those locations need it themselves. Expedite the purchase order.",
        "无调拨：从 {cand} 调入的成本（运费及线路单次运输费用）高于可挽回的毛利，或这些地点自身需要该库存。请加急采购。",
    ),
    ("excess", "covered"): (
        "The transfer plan moves {pu} units out to {pl}. Approve the transfer.",
        "调拨计划将 {pu} 件调往 {pl}。请批准该调拨。",
    ),
    ("excess", "partly_covered"): (
        "The transfer plan moves {pu} of the {units} excess units out to {pl}; for the rest, stop reordering until"
        " it sells down.",
        "调拨计划将超额 {units} 件中的 {pu} 件调往 {pl}；其余请暂停补货，待其售出。",
    ),
    ("excess", "no_receiver"): (
        "No transfer: no other location is below its order-up-to level for this item. Stop reordering until it"
        " sells down.",
        "无调拨：其他地点该商品均未低于最高库存。请暂停补货，待其售出。",
    ),
    ("excess", "no_lane"): (
        "No transfer: no lane leads from here to the locations that could use it ({cand}). Stop reordering until"
        " it sells down.",
        "无调拨：本地点没有通往需要该商品地点（{cand}）的线路。请暂停补货，待其售出。",
    ),
    ("excess", "not_worth_it"): (
        "No transfer: the locations below their order-up-to level ({cand}) are not short enough for a move to pay"
        " (freight and the lane's shipment cost). Stop reordering until it sells down.",
        "无调拨：低于最高库存的地点（{cand}）缺口不大，调拨收益抵不上运费及线路单次运输费用。请暂停补货，待其售出。",
    ),
    ("near_expiry", "covered"): (
        "The transfer plan moves {pu} units out to {pl}, first arriving {pa}, before the expiry: ship lot {lot}"
        " first and approve the transfer.",
        "调拨计划将 {pu} 件调往 {pl}，最早 {pa} 到货，早于到期日：请优先发出批次 {lot} 并批准该调拨。",
    ),
    ("near_expiry", "partly_covered"): (
        "The transfer plan moves {pu} of them out to {pl} before the expiry (first arriving {pa}; ship lot {lot}"
        " first); promote the rest before {ev} and write off what is left.",
        "调拨计划在到期前将其中 {pu} 件调往 {pl}（最早 {pa} 到货；优先发出批次 {lot}）；其余请在 {ev} 前促销，剩余部分报废。",
    ),
    ("near_expiry", "no_receiver_before_expiry"): (
        "No transfer: no other location sells it fast enough to use it before {ev}. Promote it before then and"
        " write off what is left.",
        "无调拨：没有其他地点能在 {ev} 前售出。请在此之前促销，剩余部分报废。",
    ),
    ("near_expiry", "no_lane"): (
        "No transfer: no lane leads from here to a location that sells it. Promote it before {ev} and write off"
        " what is left.",
        "无调拨：本地点没有通往有该商品销量地点的线路。请在 {ev} 前促销，剩余部分报废。",
    ),
    ("near_expiry", "lane_too_slow"): (
        "No transfer: every lane to a location that sells it takes {tt} days or more and arrives after the"
        " expiry. Promote it before {ev} and write off what is left.",
        "无调拨：通往有该商品销量地点的线路最快也需 {tt} 天，到货晚于到期日。请在 {ev} 前促销，剩余部分报废。",
    ),
    ("near_expiry", "receiver_possible"): (
        "No planned transfer (the plan moves stock to cover stock-outs): {cand} could sell about {bs} of them"
        " before {ev} over a {tt}-day lane, worth {cv} at cost against a freight of {cf}. Transfer them there,"
        " or promote.",
        "调拨计划未安排（计划只为防断货调拨）：{cand} 经 {tt} 天线路可在 {ev} 前售出约 {bs} 件，"
        "成本价值 {cv}，运费 {cf}。可调往该地点，或促销。",
    ),
    ("near_expiry", "not_worth_it"): (
        "No transfer: {cand} could sell about {bs} of them before {ev}, but the freight ({cf}) is not less than"
        " their value at cost ({cv}). Promote it before then and write off what is left.",
        "无调拨：{cand} 可在 {ev} 前售出约 {bs} 件，但运费（{cf}）不低于其成本价值（{cv}）。"
        "请在此之前促销，剩余部分报废。",
    ),
}


def plan_sentences(df: pd.DataFrame, alert_type: str) -> tuple[pd.Series, pd.Series]:
    """What the night's transfer plan does about each alert of ``alert_type``, or why it does
    nothing and what to do instead. Columns: plan_reason, plan_units, plan_locations, plan_arrival,
    units, candidates, candidate_transit, candidate_units; near-expiry also lot, event_date;
    stock-outs also lead_time_days."""
    empty = pd.Series("", index=df.index, dtype="str")
    f = {
        "pu": num(df["plan_units"], 0),
        "pl": df["plan_locations"].astype("str"),
        "pa": day(df["plan_arrival"]),
        "units": num(df["units"], 0),
        "cand": df["candidates"].astype("str"),
        "tt": num(df["candidate_transit"], 0),
        "bs": num(df["candidate_units"], 0),
        "cf": money(df["candidate_freight"]) if "candidate_freight" in df.columns else empty,
        "cv": money(df["candidate_value"]) if "candidate_value" in df.columns else empty,
        "lot": df["lot"].astype("str") if "lot" in df.columns else empty,
        "ev": day(df["event_date"]) if "event_date" in df.columns else empty,
        "lt": num(df["lead_time_days"], 1) if "lead_time_days" in df.columns else empty,
    }
    z = {**f, "pa": day(df["plan_arrival"], lang="zh")}
    if "event_date" in df.columns:
        z["ev"] = day(df["event_date"], lang="zh")
    en, zh = empty.copy(), empty.copy()
    reason = df["plan_reason"].astype("str")
    for (kind, code), (t_en, t_zh) in _PLAN.items():
        if kind != alert_type:
            continue
        hit = reason == code
        if hit.any():
            en = choose(hit, render(t_en, **f) if "{" in t_en else t_en, en)
            zh = choose(hit, render(t_zh, **z) if "{" in t_zh else t_zh, zh)
    return en, zh


# --------------------------------------------------------------------------------------------
# Transfers
# --------------------------------------------------------------------------------------------

_TRANSFER_EN = (
    "Move {qty} units ({packs} packs of {ps}) of {sku} from {src} to {dst}: {dst} runs out on {so} and is"
    " {short} units short over the next {cov} days; {src} has {dcov} days of cover and {dex} units above its own"
    " need. Lane {src}→{dst}, {transit}-day transit, arrives {arr}; cost {cost}, expected benefit {ben}."
)
_TRANSFER_ZH = (
    "从 {src} 调拨 {qty} 件 {sku}（{packs} 箱，每箱 {ps} 件）至 {dst}：{dst} 预计于 {so} 断货，未来 {cov} 天缺口"
    " {short} 件；{src} 库存可售 {dcov} 天，超出自身需求 {dex} 件。线路 {src}→{dst}，运输 {transit} 天，预计 {arr}"
    " 到达；成本 {cost}，预期收益 {ben}。"
)

_DONOR_BELOW_EN = (
    " {src} then keeps {keep} units, below its reorder point of {rop}: it is expected to lose {dl} sales there,"
    " already taken off the benefit."
)
_DONOR_BELOW_ZH = "{src} 调出后保留 {keep} 件，低于其再订货点 {rop} 件：预计因此少卖 {dl} 件，已从预期收益中扣除。"


def transfer_sentences(df: pd.DataFrame, coverage_days: int) -> tuple[pd.Series, pd.Series]:
    """Columns: sku, from_location, to_location, quantity, packs, pack_size, receiver_stockout_date,
    receiver_units_short, donor_days_of_cover (NaN = no demand), donor_excess_units, transit_days,
    arrival_date, transfer_cost, expected_benefit."""
    f = {
        "sku": df["sku"].astype("str"),
        "src": df["from_location"].astype("str"),
        "dst": df["to_location"].astype("str"),
        "qty": num(df["quantity"], 0),
        "packs": num(df["packs"], 0),
        "ps": num(df["pack_size"], 0),
        "so": day(df["receiver_stockout_date"], "n/a"),
        "short": num(df["receiver_units_short"], 1),
        "dex": num(df["donor_excess_units"], 0),
        "transit": num(df["transit_days"], 0),
        "arr": day(df["arrival_date"]),
        "cost": money(df["transfer_cost"]),
        "ben": money(df["expected_benefit"]),
        "cov": str(int(coverage_days)),
    }
    en = render(_TRANSFER_EN, **f, dcov=num(df["donor_days_of_cover"], 0, missing="unlimited"))
    z = {**f, "so": day(df["receiver_stockout_date"], "无", lang="zh"), "arr": day(df["arrival_date"], lang="zh")}
    zh = render(_TRANSFER_ZH, **z, dcov=num(df["donor_days_of_cover"], 0, missing="无限"))
    if {"donor_keeps", "donor_rop", "donor_lost_units"} <= set(df.columns):
        # the MILP's donor_keep "risk": a donor may go below its reorder point when the receiver
        # gains more than the donor is expected to lose; say so, with the numbers
        below = pd.Series(
            (pd.to_numeric(df["donor_keeps"]) < pd.to_numeric(df["donor_rop"]) - 0.5).fillna(False).to_numpy(bool),
            index=df.index,
        )
        g = {
            "src": f["src"],
            "keep": num(df["donor_keeps"], 0),
            "rop": num(df["donor_rop"], 0),
            "dl": num(df["donor_lost_units"], 1),
        }
        en = en + choose(below, render(_DONOR_BELOW_EN, **g), "")
        zh = zh + choose(below, render(_DONOR_BELOW_ZH, **g), "")
    if {"fixed_cost_per_shipment", "cost_per_unit"} <= set(df.columns) and len(df):
        # a line that costs more than it brings is there for its shipment: say which, with its sums
        lane = df.groupby(["from_location", "to_location"], sort=False)
        size = lane["quantity"].transform("size")
        h = {
            "src": f["src"],
            "dst": f["dst"],
            "cost": f["cost"],
            "ben": f["ben"],
            "var": money(df["quantity"] * df["cost_per_unit"]),
            "share": money(df["transfer_cost"] - df["quantity"] * df["cost_per_unit"]),
            "fixed": money(df["fixed_cost_per_shipment"]),
            "others": num(size - 1, 0),
            "lben": money(lane["expected_benefit"].transform("sum")),
            "lcost": money(lane["transfer_cost"].transform("sum")),
        }
        loses = pd.Series(
            (df["transfer_cost"] > df["expected_benefit"] + 0.005).to_numpy(bool) & (size > 1).to_numpy(bool),
            index=df.index,
        )
        if loses.any():
            en = en + choose(loses, render(_RIDES_EN, **h), "")
            zh = zh + choose(loses, render(_RIDES_ZH, **h), "")
    return en, zh


_RIDES_EN = (
    " On its own this line costs more than it brings ({cost} against {ben}: freight {var} plus {share}, its share by"
    " units of the lane's {fixed} shipment cost); it rides in the {src}→{dst} shipment with {others} other"
    " line(s), which all together bring {lben} against {lcost}."
)
_RIDES_ZH = (
    "单看本行，成本高于收益（成本 {cost}，收益 {ben}：运费 {var}，另按件数分摊线路单次运输费用 {fixed} 中的 {share}）；"
    "本行与另外 {others} 行同车从 {src} 运往 {dst}，整车合计收益 {lben}，成本 {lcost}。"
)


# --------------------------------------------------------------------------------------------
# Review of transfer orders (复盘)
# --------------------------------------------------------------------------------------------

_STATE_EN = {
    "shipped": "shipped, not received yet",
    "received": "received in full",
    "partly_received": "partly received",
    "cancelled": "cancelled by the warehouse",
    "expired": "expired (not shipped in time)",
}
_STATE_ZH = {
    "shipped": "已发货，尚未收货",
    "received": "已全部收货",
    "partly_received": "部分收货",
    "cancelled": "仓库已取消",
    "expired": "已过期（未按时发货）",
}
_REVIEW_EN = "Order {no}, {sku} {src}→{dst}: {state}; approved {appr}, shipped {ship}, received {recv}."
_REVIEW_ZH = "调拨单 {no}，{sku} {src}→{dst}：{state}；批准 {appr} 件，发货 {ship} 件，收货 {recv} 件。"
_REVIEW_LEAD_EN = " Lead time {lead} days (transit {tr} against {plan} planned){late}."
_REVIEW_LEAD_ZH = "调拨时效 {lead} 天（运输 {tr} 天，计划 {plan} 天）{late}。"
_NO_LEAD_EN = " Not received: no lead time yet ({plan}-day transit planned)."
_NO_LEAD_ZH = "尚未收货，暂无调拨时效（计划运输 {plan} 天）。"
_OUTCOME_EN = (
    " Over the window to {end}: the receiver {rso}, the donor {dso}; {thanks} of the received units sold"
    " beyond its own stock: realised benefit {real} against {exp} expected."
)
_OUTCOME_ZH = "截至 {end} 的覆盖期内：调入方{rso}，调出方{dso}；调入的 {thanks} 件在其自有库存之外售出：实际收益 {real}，预期 {exp}。"


def review_sentences(df: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """Columns: order_no, sku, from_location, to_location, state, approved_qty, shipped_qty,
    received_qty, lead_time_days, transit_days, planned_transit_days, on_time, window_end,
    window_closed, receiver_stocked_out, donor_stocked_out, units_sold_thanks, realised_benefit,
    expected_benefit."""
    st = df["state"].astype("str")
    on_time = df["on_time"].astype("boolean")
    f = {
        "no": df["order_no"].astype("str"),
        "sku": df["sku"].astype("str"),
        "src": df["from_location"].astype("str"),
        "dst": df["to_location"].astype("str"),
        "appr": num(df["approved_qty"], 0),
        "ship": num(df["shipped_qty"], 0, missing="0"),
        "recv": num(df["received_qty"], 0, missing="0"),
        "lead": num(df["lead_time_days"], 0),
        "tr": num(df["transit_days"], 0),
        "plan": num(df["planned_transit_days"], 0),
    }
    late = on_time.fillna(True).astype(bool)
    got = df["lead_time_days"].notna()
    gone = st.isin(["cancelled", "expired"])
    en = render(_REVIEW_EN, **f, state=st.map(_STATE_EN).fillna(st)) + choose(
        got,
        render(_REVIEW_LEAD_EN, **f, late=choose(~late, ", late", "")),
        choose(gone, " Its units are free again for other transfers.", render(_NO_LEAD_EN, plan=f["plan"])),
    )
    zh = render(_REVIEW_ZH, **f, state=st.map(_STATE_ZH).fillna(st)) + choose(
        got,
        render(_REVIEW_LEAD_ZH, **f, late=choose(~late, "，晚于计划", "")),
        choose(gone, "其数量已释放，可用于其他调拨。", render(_NO_LEAD_ZH, plan=f["plan"])),
    )
    closed = df["window_closed"].astype(bool)
    rso = df["receiver_stocked_out"].astype("boolean")
    dso = df["donor_stocked_out"].astype("boolean")

    def said(flag: pd.Series, yes: str, no: str, unknown: str) -> pd.Series:
        return choose(flag.isna(), unknown, choose(flag.fillna(False).astype(bool), yes, no))

    g = {
        "end": day(df["window_end"]),
        "thanks": num(df["units_sold_thanks"], 0),
        "real": money(df["realised_benefit"]),
        "exp": money(df["expected_benefit"]),
    }
    out_en = render(
        _OUTCOME_EN,
        **g,
        rso=said(rso, "still ran out of stock", "did not run out", "is not known yet"),
        dso=said(dso, "ran out", "did not run out", "is not known yet"),
    )
    gz = {**g, "end": day(df["window_end"], lang="zh")}
    out_zh = render(
        _OUTCOME_ZH,
        **gz,
        rso=said(rso, "仍然断货", "未断货", "尚不可知"),
        dso=said(dso, "断货", "未断货", "尚不可知"),
    )
    pending_en = choose(
        closed, out_en, render(" The window ends on {end}: the outcome is not final yet.", end=g["end"])
    )
    pending_zh = choose(closed, out_zh, render("覆盖期至 {end} 结束，结果尚未最终确定。", end=gz["end"]))
    return en + pending_en, zh + pending_zh


def lane_review_sentences(df: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """Columns: from_location, to_location, configured_transit_days, observed_transit_days, orders, flagged."""
    f = {
        "src": df["from_location"].astype("str"),
        "dst": df["to_location"].astype("str"),
        "cfg": num(df["configured_transit_days"], 0),
        "obs": num(df["observed_transit_days"], 1),
        "n": num(df["orders"], 0),
    }
    flag = df["flagged"].astype(bool)
    en = render("Lane {src}→{dst}: {n} received order(s) took {obs} days in transit on average; configured {cfg}.", **f)
    zh = render("线路 {src}→{dst}：{n} 张已收货调拨单平均运输 {obs} 天；配置为 {cfg} 天。", **f)
    en = en + choose(flag, " Worth checking the lane's transit days in the configuration.", "")
    zh = zh + choose(flag, "建议核对配置中的运输天数。", "")
    return en, zh
