"""Names a planner reads instead of our identifiers: KPI metrics, alert actions, stages, tables and
data-quality rules,
in English and Chinese, and how each KPI's value is shown (a share as a percentage, a count whole,
money with two decimals). The report and the digest look them up here; a code without a label
shows as itself, which tests/integration/test_report_render.py refuses in the zh-CN report.
"""

from __future__ import annotations

import math
from datetime import date

#: metric -> (English, Chinese, kind); kind: "pct" (a 0..1 share), "count", "money", "days", "hours", "ratio"
METRICS: dict[str, tuple[str, str, str]] = {
    "inventory_value": ("Inventory value", "库存金额", "money"),
    "days_of_inventory": ("Days of inventory", "库存可用天数", "days"),
    "stockout_rate": ("Stock-out rate", "缺货率", "pct"),
    "slow_mover_value_share": ("Slow-mover share of value", "滞销库存金额占比", "pct"),
    "near_expiry_value_share": ("Near-expiry share of value", "临期库存金额占比", "pct"),
    "band_compliance": ("Within the healthy stock band", "库存处于健康区间的比例", "pct"),
    "transfers_recommended_count": ("Transfers recommended", "建议调拨条数", "count"),
    "transfers_recommended_units": ("Units recommended for transfer", "建议调拨数量", "count"),
    "transfers_recommended_cost": ("Cost of recommended transfers", "建议调拨运费", "money"),
    "purchases_proposed_count": ("Purchases proposed", "建议采购单数", "count"),
    "purchases_proposed_units": ("Units of proposed purchases", "建议采购数量", "count"),
    "purchases_proposed_value": ("Value of proposed purchases", "建议采购金额", "money"),
    "on_order_value": ("Value on open purchase orders", "采购在途金额", "money"),
    "forecast_wape": ("Forecast error (WAPE)", "预测误差(WAPE)", "pct"),
    "turnover": ("Inventory turnover (annualised)", "库存周转次数(年化)", "ratio"),
    "fill_rate": ("Fill rate", "订单满足率", "pct"),
    "transfers_approved_count": ("Transfers approved", "已批准调拨条数", "count"),
    "transfers_approved_units": ("Units approved for transfer", "已批准调拨数量", "count"),
    "transfers_approved_cost": ("Cost of approved transfers", "已批准调拨运费", "money"),
    "forecast_wape_last_horizon": ("Forecast error over the last horizon", "上一预测期的预测误差", "pct"),
    "forecast_bias_last_horizon": ("Forecast bias over the last horizon", "上一预测期的预测偏差", "pct"),
    "forecast_last_horizon_lag_days": ("Days since that forecast", "距该预测的天数", "days"),
    "transfer_lead_time_days": ("Transfer lead time", "调拨到货周期", "days"),
    "transfer_on_time_rate": ("Transfers received on time", "调拨准时到货率", "pct"),
    "transfer_receipt_rate": ("Units received of units approved", "已收货数量占批准数量的比例", "pct"),
    "transfer_cost_share_of_sales": ("Transfer cost as a share of sales", "调拨运费占销售额比例", "pct"),
    "transfer_expected_benefit": ("Expected benefit of transfers", "调拨预期收益", "money"),
    "transfer_realised_benefit": ("Realised benefit of transfers", "调拨实际收益", "money"),
    "transfer_benefit_realisation": ("Benefit realised of expected", "收益实现率", "pct"),
    "review_receiver_stockout_rate": ("Receivers out of stock after a transfer", "调入方调拨后缺货率", "pct"),
    "review_donor_stockout_rate": ("Donors out of stock after a transfer", "调出方调拨后缺货率", "pct"),
    "decision_acceptance_rate": ("Recommendations approved", "建议被批准的比例", "pct"),
    "decision_hours": ("Hours from publish to decision", "从发布到决定的小时数", "hours"),
}

#: alert action code -> (English, Chinese)
ACTIONS: dict[str, tuple[str, str]] = {
    "expedite_or_transfer": ("Expedite the order or transfer stock in", "加急补货或从其他仓调入"),
    "clear_dead_stock": ("Clear dead stock (return, sell off or write off)", "清理呆滞库存(退货、清仓或报废)"),
    "promote_or_transfer": ("Promote, or transfer to where it sells", "促销,或调往销售更快的门店"),
    "transfer_out": ("Transfer the excess out", "将过剩库存调出"),
    "write_off": ("Write off (expired)", "报废(已过期)"),
    "transfer_to_faster_location": ("Transfer to a location that sells it before expiry", "调往能在到期前售完的门店"),
    "promote": ("Promote or mark down before expiry", "到期前促销或降价"),
    "approve_transfer": ("Approve the planned transfer", "批准计划中的调拨"),
    "approve_transfer_and_expedite": (
        "Approve the planned transfer and expedite the purchase order for the rest",
        "批准计划中的调拨,其余加急采购",
    ),
    "approve_transfer_and_promote": (
        "Approve the planned transfer and promote the rest before expiry",
        "批准计划中的调拨,其余到期前促销",
    ),
    "expedite_purchase": ("Expedite the purchase order (no transfer can cover it)", "加急采购(无可用调拨)"),
    "stop_ordering": ("Stop reordering until it sells down", "暂停补货,待库存消化"),
    "consider_transfer": (
        "Consider a transfer to where it sells before expiry, or promote",
        "考虑调往到期前能售出的地点,或促销",
    ),
}

#: attachment column -> (English, Chinese); the decisions import accepts these as headers too
COLUMNS: dict[str, tuple[str, str]] = {
    "run_date": ("Run date", "运行日期"),
    "run_id": ("Run id", "运行编号"),
    "sku": ("SKU", "商品编码"),
    "item_name": ("Item", "商品名称"),
    "from_location": ("From", "调出地点"),
    "from_name": ("From (name)", "调出地点名称"),
    "to_location": ("To", "调入地点"),
    "to_name": ("To (name)", "调入地点名称"),
    "location": ("Location", "地点"),
    "location_name": ("Location (name)", "地点名称"),
    "quantity": ("Units to move", "调拨数量(件)"),
    "packs": ("Packs", "箱数"),
    "transfer_cost": ("Cost", "调拨成本"),
    "expected_benefit": ("Expected benefit", "预期收益"),
    "net_benefit": ("Net benefit", "净收益"),
    "receiver_stockout_date": ("Receiver runs out on", "调入方预计断货日"),
    "receiver_units_short": ("Receiver units short", "调入方缺口(件)"),
    "donor_days_of_cover": ("Donor days of cover", "调出方可售天数"),
    "donor_excess_units": ("Donor units above need", "调出方富余(件)"),
    "arrival_date": ("Arrives", "预计到货日"),
    "approval_tier": ("Approval", "审批方式"),
    "method": ("Method", "方法"),
    "alert_type": ("Alert", "预警类型"),
    "lot": ("Lot", "批次"),
    "severity": ("Severity", "严重程度"),
    "units": ("Units", "数量(件)"),
    "value_at_risk": ("Value at risk", "风险金额"),
    "event_date": ("Stock-out / expiry date", "断货/到期日"),
    "action": ("Action", "建议操作"),
    "plan_units": ("Units in the plan", "计划调拨数量(件)"),
    "plan_locations": ("Plan: other locations", "计划调拨对方地点"),
    "plan_reason": ("Plan", "调拨计划情况"),
    "explanation": ("Explanation", "说明"),
    "decision": ("Decision", "决定"),
    "reason_code": ("Reason code", "原因代码"),
    "reason_text": ("Reason", "原因说明"),
    "supplier": ("Supplier", "供应商"),
    "order_by": ("Order by", "下单日期"),
    "expected_receipt": ("Expected receipt", "预计到货日"),
    "order_quantity": ("Units to order", "采购数量(件)"),
    "unit_cost": ("Unit cost", "单价"),
    "fixed_order_cost": ("Order cost", "订单固定费用"),
    "cost": ("Order value", "订单金额"),
    "moq": ("Minimum order quantity", "最小订购量"),
    "order_multiple": ("Order multiple", "订购倍数"),
    "inventory_position": ("Inventory position", "库存位置"),
    "reorder_point": ("Reorder point", "再订货点"),
    "order_up_to": ("Order up to", "最高库存"),
    "runs_out_before_receipt": ("Runs out before receipt", "到货前缺货"),
}

#: alert plan_reason -> (English, Chinese)
PLAN_REASONS: dict[str, tuple[str, str]] = {
    "covered": ("Covered by the plan", "调拨计划已覆盖"),
    "partly_covered": ("Partly covered by the plan", "调拨计划部分覆盖"),
    "no_donor": ("No location has stock to spare", "无地点有富余库存"),
    "no_receiver": ("No location needs it", "无地点需要"),
    "no_lane": ("No lane", "无可用线路"),
    "lane_too_slow": ("Lanes too slow", "线路太慢"),
    "not_worth_it": ("A transfer would not pay", "调拨不划算"),
    "no_receiver_before_expiry": ("Nowhere sells it before expiry", "到期前无处可售"),
    "receiver_possible": ("Could sell elsewhere in time", "他处可及时售出"),
    "expired": ("Expired", "已过期"),
    "": ("", ""),
}

#: alert severity -> (English, Chinese)
SEVERITIES: dict[str, tuple[str, str]] = {"high": ("High", "高"), "medium": ("Medium", "中"), "low": ("Low", "低")}

#: approval tier / method -> (English, Chinese)
TIERS: dict[str, tuple[str, str]] = {
    "auto": ("Automatic", "自动批准"),
    "planner": ("Planner", "计划员审批"),
    "milp": ("Optimised (MILP)", "优化求解(MILP)"),
    "greedy": ("Greedy", "贪心算法"),
}

#: pipeline stage -> (English, Chinese)
STAGES: dict[str, tuple[str, str]] = {
    "extract": ("Extract", "抽取"),
    "validate": ("Validate", "数据校验"),
    "validated": ("Validated", "校验通过"),
    "masters": ("Master data", "主数据"),
    "feedback": ("Feedback", "反馈"),
    "review": ("Review", "复盘"),
    "forecast": ("Forecast", "需求预测"),
    "policy": ("Policy", "库存策略"),
    "alerts": ("Alerts", "预警"),
    "transfers": ("Transfers", "调拨"),
    "kpis": ("KPIs", "指标"),
    "summary": ("Summary", "汇总"),
    "load": ("Publish", "发布"),
    "notify": ("Notify", "通知"),
    "outputs": ("Outputs", "输出"),
}

#: data-quality rule -> (English, Chinese)
RULES: dict[str, tuple[str, str]] = {
    "not_null": ("Value present", "不能为空"),
    "no_control_characters": ("No control characters", "不含控制字符"),
    "non_negative": ("Not negative", "不能为负"),
    "within_bounds": ("Within bounds", "在允许范围内"),
    "at_least_one": ("At least one", "至少为 1"),
    "abc_class": ("ABC class A, B or C", "ABC 分类为 A/B/C"),
    "known_location": ("Known location", "门店存在于主数据"),
    "known_sku": ("Known SKU", "商品存在于主数据"),
    "known_status": ("Known status", "状态合法"),
    "not_in_future": ("Not in the future", "日期不在未来"),
    "type": ("Readable as its type", "类型可读"),
    "duplicate_row": ("Exact duplicate row", "完全重复的行"),
    "duplicate_key": ("Duplicate key", "主键重复"),
    "spike": ("Far above its own history", "远超自身历史水平"),
    "not_empty": ("Not empty", "不能为空表"),
    "row_count": ("Row count", "行数"),
    "volume": ("Row count against history", "行数与历史相比"),
    "schema_columns": ("Required columns present", "必需列齐全"),
    "schema_types": ("Column types", "列类型"),
    "schema_new_columns": ("New columns in the source", "源系统新增列"),
    "snapshot_for_every_active_location": ("A stock snapshot for every active location", "每个营业门店都有库存快照"),
    "fresh": ("Sales reach yesterday", "销售数据截至昨天"),
    "no_missing_days": ("No day without any sale", "没有全公司零销售的日子"),
    "bad_row_share": ("Share of bad rows", "坏行占比"),
    "day_volume": ("Daily quantity against its baseline", "每日销量与基线相比"),
    "sku_vanished": ("Regular sellers still selling", "常销商品仍有销售"),
    "sku_count": ("SKUs sold against history", "有销售的商品数与历史相比"),
}

#: table -> (English, Chinese)
TABLES: dict[str, tuple[str, str]] = {
    "items": ("Items", "商品"),
    "locations": ("Locations", "仓库/门店"),
    "lanes": ("Lanes", "调拨线路"),
    "sales": ("Sales", "销售"),
    "stock": ("Stock", "库存"),
    "lead_times": ("Lead times", "补货周期"),
    "policies": ("Policies", "策略"),
    "transfer_status": ("Transfer status", "调拨执行状态"),
    "forecasts": ("Forecasts", "预测"),
    "forecast_accuracy": ("Forecast accuracy", "预测准确度"),
    "lead_time_demand": ("Lead-time demand", "补货期需求"),
    "inventory_policy": ("Inventory policy", "库存策略"),
    "alerts": ("Alerts", "预警"),
    "transfers": ("Transfers", "调拨建议"),
    "kpis": ("KPIs", "指标"),
    "dq_results": ("Data-quality results", "数据质量结果"),
    "quarantine": ("Rows set aside", "隔离的坏行"),
    "item_master": ("Item master", "商品主数据"),
    "location_master": ("Location master", "门店主数据"),
    "lane_master": ("Lane master", "线路主数据"),
    "transfer_review": ("Transfer review", "调拨复盘"),
    "lane_review": ("Lane review", "线路复盘"),
    "quarantined": ("Rows set aside", "隔离的坏行"),
    "rules_failed": ("Rules failed", "未通过的规则"),
    "watermarks": ("Watermarks", "增量水位"),
    "auto_approved": ("Approved automatically", "自动批准"),
    "auto_approved_purchases": ("Purchases approved automatically", "自动批准的采购"),
    "service_curve": ("Service curve", "服务水平曲线"),
    "purchase_proposals": ("Purchase proposals", "采购建议"),
}


def _pick(table: dict, code: str, lang: str) -> str:
    pair = table.get(code)
    if pair is None:
        return code
    return pair[1] if lang.startswith("zh") else pair[0]


def metric(code: str, lang: str) -> str:
    return _pick({k: v[:2] for k, v in METRICS.items()}, code, lang)


def action(code: str, lang: str) -> str:
    return _pick(ACTIONS, code, lang)


def pick(table: dict, code: str, lang: str) -> str:
    """The name of ``code`` in ``table`` for ``lang`` (``zh``/``zh-CN`` or English); the code itself
    when it has none."""
    return _pick(table, code, lang)


def column(code: str, lang: str) -> str:
    return _pick(COLUMNS, code, lang)


def plan_reason(code: str, lang: str) -> str:
    return _pick(PLAN_REASONS, code, lang)


def stage(code: str, lang: str) -> str:
    return _pick(STAGES, code, lang)


def table(code: str, lang: str) -> str:
    return _pick(TABLES, code, lang)


def rule(code: str, lang: str) -> str:
    return _pick(RULES, code, lang)


def metric_value(code: str, value: float | None, lang: str, currency: str = "") -> str:
    """A KPI value as a planner reads it: 65 % for a share, 283 for a count, 1,234.50 for money."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    kind = METRICS.get(code, ("", "", "ratio"))[2]
    if kind == "pct":
        return f"{value * 100:.1f} %"
    if kind == "count":
        return f"{value:,.0f}"
    if kind == "money":
        return f"{value:,.2f} {currency}" if currency else f"{value:,.2f}"
    unit = {"days": (" days", " 天"), "hours": (" h", " 小时")}.get(kind)
    if unit:
        return f"{value:,.1f}{unit[1] if lang.startswith('zh') else unit[0]}"
    return f"{value:,.2f}"


_WEEKDAYS = (
    ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
    ("星期一", "星期二", "星期三", "星期四", "星期五", "星期六", "星期日"),
)
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_MONTHS_LONG = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip


def day(d: date, lang: str) -> str:
    """A date in a table cell, in the locale's form: ``2026年11月25日`` / ``25 Nov 2026``.
    Written out here rather than by ``strftime``, whose month names follow the machine's locale."""
    if lang.startswith("zh"):
        return f"{d.year}年{d.month}月{d.day}日"
    return f"{d.day} {_MONTHS[d.month - 1]} {d.year}"


def long_day(d: date, lang: str) -> str:
    """A business date in a heading or subject: ``2026年11月25日 星期三`` / ``Wednesday 25 November 2026``."""
    zh = lang.startswith("zh")
    weekday = _WEEKDAYS[1 if zh else 0][d.weekday()]
    if zh:
        return f"{d.year}年{d.month}月{d.day}日 {weekday}"
    return f"{weekday} {d.day} {_MONTHS_LONG[d.month - 1]} {d.year}"
