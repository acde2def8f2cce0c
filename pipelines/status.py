"""``tiaobo status``: the latest attempts of the night and what waits for planners, in one screen.

Read from the reporting database only (run log, published runs, transfers and decisions of the
latest published date, the location master for regions), so it answers the same on the machine
that runs the night and on a laptop with a read-only role.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import pandas as pd

from pipelines import reporting
from pipelines.urls import redact_url

LABELS: dict[str, dict[str, Any]] = {
    "en": {
        "none": "no run has been logged in {url} yet",
        "runs": "latest attempts (newest first):",
        "published": "last published: {date} (run {run_id}, at {at})",
        "never": "nothing is published yet",
        "pending": "waiting for planners on {date}: {n} transfer(s) to decide",
        "by": "  by tier and region: {parts}",
        "nothing": "nothing waits for planners on {date}",
        "status": {
            "published": "published",
            "failed": "FAILED",
            "stopped": "stopped by validation",
            "running": "running",
            "abandoned": "abandoned (its process died)",
            "skipped": "skipped (source not there yet)",
            "email_failed": "email not delivered",
        },
    },
    "zh": {
        "none": "{url} 中还没有运行记录",
        "runs": "最近的运行(最新在前):",
        "published": "最近发布:{date}(运行 {run_id},发布于 {at})",
        "never": "尚未发布任何结果",
        "pending": "{date} 待计划员处理:{n} 条调拨待决定",
        "by": "  按审批层级和区域:{parts}",
        "nothing": "{date} 没有待计划员处理的调拨",
        "status": {
            "published": "已发布",
            "failed": "失败",
            "stopped": "被数据校验停止",
            "running": "运行中",
            "abandoned": "已放弃(进程已终止)",
            "skipped": "已跳过(数据源尚无该日数据)",
            "email_failed": "邮件未送达",
        },
    },
}

TIERS = {"en": {"planner": "planner", "manager": "manager"}, "zh": {"planner": "计划员", "manager": "经理"}}


def _first_line(text: object, width: int = 110) -> str:
    s = str(text or "").strip().splitlines()
    line = s[0] if s else ""
    return line if len(line) <= width else line[: width - 1] + "…"


def run_lines(log: pd.DataFrame, runs: int, lang: str) -> list[str]:
    """One line per attempt, newest first: date, state, stage, when, the message's first line."""
    names = LABELS[lang]["status"]
    out = []
    for r in log.sort_values("started_at", ascending=False).head(runs).itertuples(index=False):
        started = r.started_at.strftime("%Y-%m-%d %H:%M") if not pd.isna(r.started_at) else "?"
        stage = f" [{r.stage}]" if r.stage not in (None, "None", "") else ""
        msg = _first_line(r.message) if r.status != "published" or r.message not in ("ok", "") else ""
        out.append(
            f"  {pd.Timestamp(r.run_date):%Y-%m-%d}  {names.get(r.status, r.status):<22}{stage}  {started} UTC"
            + (f"  {msg}" if msg else "")
        )
    return out


def pending(transfers: pd.DataFrame, decisions: pd.DataFrame, locations: pd.DataFrame) -> pd.DataFrame:
    """Transfers that need a person (tier not ``auto``) and have no decision yet, with the
    receiver's region. Columns: ``approval_tier``, ``region``, ``n``."""
    need = transfers[transfers["approval_tier"] != "auto"]
    if len(decisions):
        decided = decisions[["sku", "from_location", "to_location"]].drop_duplicates()
        need = need.merge(decided, on=["sku", "from_location", "to_location"], how="left", indicator=True)
        need = need[need["_merge"] == "left_only"]
    regions = locations[["location", "region"]].drop_duplicates("location")
    need = need.merge(regions, left_on="to_location", right_on="location", how="left")
    need["region"] = need["region"].fillna("-")
    return need.groupby(["approval_tier", "region"], sort=True).size().rename("n").reset_index()


def status_lines(url: str, runs: int = 10, lang: str = "en") -> list[str]:
    """The lines ``tiaobo status`` prints."""
    from pipelines import decision_store

    text = LABELS[lang]
    reporting.migrate(url)
    log = reporting.read_run_log(url)
    if log.empty:
        return [text["none"].format(url=redact_url(url))]
    out = [text["runs"], *run_lines(log, runs, lang)]
    published = reporting.read_published_runs(url)
    if published.empty:
        return [*out, text["never"]]
    last = published.iloc[-1]
    day = pd.Timestamp(last["run_date"]).date()
    at = pd.Timestamp(last["published_at"]).strftime("%Y-%m-%d %H:%M UTC")
    out.append(text["published"].format(date=day, run_id=last["run_id"], at=at))
    with reporting.engine_for(url).connect() as conn:
        decisions = decision_store.latest_decisions(conn, run_dates=[day])
    waiting = pending(
        reporting.read_table(url, "transfers", day), decisions, reporting.read_table(url, "location_master", day)
    )
    return [*out, *_pending_lines(waiting, day, lang)]


def _pending_lines(waiting: pd.DataFrame, day: date, lang: str) -> list[str]:
    text = LABELS[lang]
    if waiting.empty:
        return [text["nothing"].format(date=day)]
    tiers = TIERS[lang]
    parts = ", ".join(f"{tiers.get(r.approval_tier, r.approval_tier)}/{r.region} {r.n}" for r in waiting.itertuples())
    return [text["pending"].format(date=day, n=int(waiting["n"].sum())), text["by"].format(parts=parts)]
