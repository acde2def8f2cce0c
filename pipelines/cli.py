"""The ``tiaobo`` command line: the nightly pipeline without an Airflow server (same code as the DAG)."""

from __future__ import annotations

import logging
import sys
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer

from pipelines.config import Config, ConfigError, load_config

app = typer.Typer(
    help="Tiaobo: nightly demand forecasts, safety stock, alerts and stock transfers.", no_args_is_help=True
)

ConfigOpt = Annotated[
    Path | None, typer.Option("--config", "-c", help="YAML configuration file (default: embedded defaults)")
]


def _say(msg: str) -> None:
    typer.echo(msg, err=True)


class _Clock:
    def __init__(self) -> None:
        self.t0 = time.perf_counter()

    def __call__(self, msg: str) -> None:
        _say(f"  {time.perf_counter() - self.t0:6.1f}s  {msg}")


def _load(config: Path | None) -> Config:
    try:
        return load_config(config)
    except ConfigError as exc:
        _say(f"error: {exc}")
        raise typer.Exit(2) from None


def _parse_date(value: str) -> date:
    try:
        return datetime.strptime(value, "%Y-%m-%d").date()
    except ValueError:
        _say(f"error: --date must be YYYY-MM-DD, got {value!r}")
        raise typer.Exit(2) from None


@app.command("demo-source")
def demo_source(
    config: ConfigOpt = None,
    url: Annotated[str | None, typer.Option(help="SQLAlchemy URL to write to (default: the configured source)")] = None,
    seed: int = 42,
    skus: Annotated[int, typer.Option(help="number of SKUs")] = 300,
    locations: Annotated[int, typer.Option(help="number of locations")] = 6,
    days: Annotated[int, typer.Option(help="days of sales history")] = 730,
) -> None:
    """Generate the demo ERP source database (deterministic for a seed)."""
    from pipelines.demo import source as ds

    cfg = _load(config)
    target = url or cfg.source_url()
    if target.startswith("sqlite:///"):
        Path(target.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    clock = _Clock()
    counts = ds.generate(target, seed=seed, n_skus=skus, n_locations=locations, days=days, progress=clock)
    from pipelines.connections import describe

    _say(f"demo ERP written to {describe(target)}: " + ", ".join(f"{k} {v:,}" for k, v in counts.items()))


@app.command()
def run(
    date_: Annotated[str, typer.Option("--date", help="business date of the run, YYYY-MM-DD")],
    config: ConfigOpt = None,
) -> None:
    """Run the nightly pipeline for one business date."""
    cfg = _load(config)
    _run(cfg, _parse_date(date_))


def _run(cfg: Config, run_date: date) -> dict[str, Any]:
    from pipelines import runner

    clock = _Clock()
    _say(f"Tiaobo nightly run for {run_date} (staging {cfg.staging_dir}/{run_date})")
    try:
        results = runner.run_pipeline(cfg, run_date, progress=clock)
    except runner.FailedAfterPublish as exc:
        _say(f"\nerror: the run for {run_date} published its results, then failed.\n{exc}")
        raise typer.Exit(1) from None
    except Exception as exc:
        _say(f"\nerror: the run for {run_date} failed; nothing was published.\n{exc}")
        raise typer.Exit(1) from None
    _print_summary(cfg, run_date, results, time.perf_counter() - clock.t0)
    return results


def _print_summary(cfg: Config, run_date: date, results: dict[str, Any], seconds: float) -> None:
    import pandas as pd

    from pipelines.connections import describe
    from pipelines.context import RunContext

    ctx = RunContext(cfg, run_date)
    out = typer.echo
    out(f"\n== Tiaobo {run_date}  run {ctx.run_id}  ({seconds:.0f}s) ==")
    out("\nRows per stage:")
    for stage, res in results.items():
        if stage == "timings" or not res["counts"]:
            continue
        counts = ", ".join(f"{k} {v:,}" for k, v in res["counts"].items())
        out(f"  {stage:<10} {counts}   [{results['timings'].get(stage, 0):.1f}s]")
        for note in res.get("notes", []):
            out(f"  {'':<10} note: {note}")
    transfers = ctx.read("transfers") if ctx.exists("transfers") else pd.DataFrame()
    if len(transfers):
        top = transfers.sort_values(["expected_benefit", "sku"], ascending=[False, True]).head(5)
        out(f"\nTop transfer recommendations ({len(transfers)} in all):")
        for r in top.itertuples():
            out(f"  [{r.approval_tier}] {r.explanation_en}")
    alerts = ctx.read("alerts") if ctx.exists("alerts") else pd.DataFrame()
    if len(alerts):
        sev = {"high": 0, "medium": 1, "low": 2}
        top = (
            alerts.assign(_s=alerts["severity"].map(sev))
            .sort_values(["_s", "value_at_risk", "sku"], ascending=[True, False, True])
            .head(5)
        )
        out(
            f"\nTop alerts ({len(alerts)} in all: "
            + ", ".join(f"{k} {v}" for k, v in alerts["alert_type"].value_counts().sort_index().items())
            + "):"
        )
        for r in top.itertuples():
            out(f"  [{r.severity}] {r.alert_type} {r.sku} @ {r.location}: {r.explanation_en}")
    out("\nOutputs:")
    out(f"  reporting database: {describe(cfg.reporting_url())}")
    notify = results.get("notify", {}).get("paths", {})
    for k, v in sorted(notify.items()):
        out(f"  {k}: {v}")
    out(f"  staging files: {ctx.run_dir}")


@app.command()
def demo(
    config: ConfigOpt = None,
    skus: Annotated[int, typer.Option(help="number of SKUs in the demo ERP")] = 120,
    nights: Annotated[
        int, typer.Option(help="consecutive business nights to run (simulated planner and warehouse)")
    ] = 1,
) -> None:
    """Generate the demo ERP and run the nightly pipeline for its next business night(s).

    With ``--nights N`` the demo runs N consecutive nights: each night a simulated planner decides
    the recommendations that need a person, the approved transfers become orders in the demo ERP,
    and its warehouse ships, receives and sells before the next night (pipelines.demo.nights).
    """
    from pipelines.demo import nights as dn
    from pipelines.demo import source as ds

    if nights < 1:
        _say("error: --nights must be at least 1")
        raise typer.Exit(2)
    cfg = _load(config)
    try:
        cfg = load_config(config, overrides=dn.demo_config_overrides(cfg))
    except ConfigError as exc:
        _say(f"error: {exc}")
        raise typer.Exit(2) from None
    demo_source(config=config, url=None, seed=42, skus=skus, locations=6, days=730)
    first = ds.DEMO_END_DATE + timedelta(days=1)
    if nights == 1:
        _run(cfg, first)
    else:
        dn.run_nights(cfg, first, nights, lambda day: _run(cfg, day), _say)
    typer.echo(workbench_hint(cfg))


@app.command()
def orders(
    date_: Annotated[str, typer.Option("--date", help="business date, YYYY-MM-DD")],
    config: ConfigOpt = None,
) -> None:
    """Turn approved decisions into transfer orders and export the pending ones (run it during the
    day, e.g. hourly, so approvals reach the ERP before the next night)."""
    from pipelines.order_export import orders_cycle

    cfg = _load(config)
    counts = orders_cycle(cfg, _parse_date(date_))
    typer.echo(", ".join(f"{k} {v}" for k, v in counts.items()) or "nothing to do")


@app.command()
def retrain(
    date_: Annotated[str, typer.Option("--date", help="business date of the retrain, YYYY-MM-DD")],
    config: ConfigOpt = None,
) -> None:
    """Backtest the forecast models, save a new version, and promote it only if not worse.

    Uses the validated sales staged for that date (run `tiaobo run --date` first).
    """
    from pipelines.context import RunContext
    from pipelines.runner import run_stage

    cfg = _load(config)
    result = run_stage("retrain", RunContext(cfg, _parse_date(date_)))
    for note in result.notes:
        typer.echo(note)


@app.command()
def report(
    date_: Annotated[str, typer.Option("--date", help="published business date, YYYY-MM-DD")],
    config: ConfigOpt = None,
) -> None:
    """Rebuild the HTML report of a published run date from the reporting database."""
    from pipelines.report import report_command

    cfg = _load(config)
    try:
        paths = report_command(_parse_date(date_), cfg)
    except LookupError as exc:
        _say(f"error: {exc}")
        raise typer.Exit(1) from None
    for p in paths:
        typer.echo(str(p))


@app.command()
def roles(
    url: Annotated[str | None, typer.Option(help="administrator URL of the PostgreSQL reporting DB")] = None,
    planner_role: str = "tiaobo_planner",
    loader_role: str = "tiaobo_loader",
    workbench_role: Annotated[
        str | None, typer.Option(help="also the workbench's role (reads all, appends decisions), e.g. tiaobo_workbench")
    ] = None,
    config: ConfigOpt = None,
) -> None:
    """Create the read-only planner role and the loader role (and the workbench's role).

    Passwords come from TIAOBO_PLANNER_PASSWORD / TIAOBO_LOADER_PASSWORD / TIAOBO_WORKBENCH_PASSWORD,
    never from arguments.
    """
    from pipelines.reporting import roles_command

    cfg = _load(config)
    try:
        typer.echo(roles_command(url or cfg.reporting_url(), planner_role, loader_role, workbench_role))
    except ValueError as exc:
        _say(f"error: {exc}")
        raise typer.Exit(2) from None


@app.command()
def replay(
    dataset: Annotated[str, typer.Option(help="vn1, m5 or all")] = "all",
    data_dir: Annotated[Path | None, typer.Option(help="real demand data (default ../shared/data)")] = None,
    dates: Annotated[
        str, typer.Option(help="decision dates: reported, validation, or a comma-separated list")
    ] = "reported",
    seeds: Annotated[str, typer.Option(help="seeds of the starting-stock scenario, comma-separated")] = "0,1,2,3",
    time_limit: Annotated[float, typer.Option(help="the planner's MILP time limit per plan, seconds")] = 60.0,
    optimum_time_limit: Annotated[float, typer.Option(help="the exact optimum's time limit, seconds")] = 60.0,
    replan_every: Annotated[int, typer.Option(help="days between re-plans (0: one decision only)")] = 7,
    coverage_days: Annotated[
        int | None,
        typer.Option(
            help="receivers' coverage horizon, days; 0 = the days left (default: each data set's validated choice)"
        ),
    ] = None,
    m5_item_every: Annotated[int, typer.Option(help="M5: a fixed 1-in-N sample of the items")] = 20,
) -> None:
    """Replay the product's transfer planning on real demand under the benchmark protocol, against the exact optimum."""
    from pipelines.eval.replay import replay_command

    replay_command(
        dataset,
        data_dir,
        dates,
        tuple(int(x) for x in seeds.split(",")),
        time_limit,
        optimum_time_limit,
        replan_every or None,
        "validated" if coverage_days is None else coverage_days,
        m5_item_every,
        echo=typer.echo,
    )


# --------------------------------------------------------------------------------------------
# The planner workbench: tiaobo serve, tiaobo users ..., tiaobo decisions import
# --------------------------------------------------------------------------------------------

users_app = typer.Typer(help="Workbench accounts (planner, manager, admin).", no_args_is_help=True)
decisions_app = typer.Typer(help="Planner decisions on transfer recommendations.", no_args_is_help=True)
app.add_typer(users_app, name="users")
app.add_typer(decisions_app, name="decisions")


def workbench_hint(cfg: Config) -> str:
    """How to open the workbench on this configuration's reporting database (printed by ``make demo``)."""
    url = cfg.workbench.base_url or "http://127.0.0.1:8000"
    return (
        "\nPlanner workbench (docs/workbench.md):\n"
        f"  export {cfg.workbench.session_secret_env}=$(.venv/bin/python -c 'import secrets; print(secrets.token_urlsafe(32))')\n"
        "  .venv/bin/tiaobo users add planner1 --role planner --region 华东 --lang zh   # asks for a password\n"
        "  .venv/bin/tiaobo serve --host 127.0.0.1 --port 8000\n"
        f"  then open {url}/ and sign in"
    )


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
    config: ConfigOpt = None,
) -> None:
    """Start the planner workbench on the reporting database (session secret from the environment)."""
    import uvicorn

    from pipelines.workbench.app import create_app

    cfg = _load(config)
    try:
        web = create_app(cfg)
    except ConfigError as exc:
        _say(f"error: {exc}")
        raise typer.Exit(2) from None
    _say(f"Tiaobo workbench on http://{host}:{port}/ (reporting database {_describe(cfg.reporting_url())})")
    # the TCP peer stays the client address (no X-Forwarded-For rewriting): the trusted-proxy check
    # and the login throttling both key on it
    uvicorn.run(web, host=host, port=port, proxy_headers=False)


def _describe(url: str) -> str:
    from pipelines.connections import describe

    return describe(url)


def _user_conn(cfg: Config) -> Any:
    from pipelines import reporting

    url = cfg.reporting_url()
    reporting.migrate(url)
    return reporting.engine_for(url).execution_options(tiaobo_write=True)


@users_app.command("add")
def users_add(
    name: str,
    role: Annotated[str, typer.Option(help="planner, manager or admin")] = "planner",
    region: Annotated[list[str] | None, typer.Option(help="a region the planner decides (repeatable)")] = None,
    lang: Annotated[str, typer.Option(help="zh or en")] = "zh",
    no_password: Annotated[bool, typer.Option(help="sign-in only through the trusted proxy header")] = False,
    config: ConfigOpt = None,
) -> None:
    """Create an account; the password comes from TIAOBO_USER_PASSWORD or a prompt, never an argument."""
    import os

    from pipelines.workbench import users

    cfg = _load(config)
    password = None
    if not no_password:
        password = os.environ.get("TIAOBO_USER_PASSWORD") or typer.prompt(
            f"password for {name}", hide_input=True, confirmation_prompt=True
        )
    try:
        with _user_conn(cfg).begin() as conn:
            u = users.add_user(conn, name, role, list(region or []), lang, password)
    except users.UserError as exc:
        _say(f"error: {exc}")
        raise typer.Exit(2) from None
    typer.echo(f"user {u.name} added: role {u.role}, regions {', '.join(u.regions) or 'all'}, language {u.lang}")


@users_app.command("disable")
def users_disable(name: str, config: ConfigOpt = None) -> None:
    """Disable an account and end its sessions (its decisions stay)."""
    from pipelines.workbench import users

    cfg = _load(config)
    try:
        with _user_conn(cfg).begin() as conn:
            users.disable_user(conn, name)
    except users.UserError as exc:
        _say(f"error: {exc}")
        raise typer.Exit(2) from None
    typer.echo(f"user {name} disabled")


@users_app.command("list")
def users_list(config: ConfigOpt = None) -> None:
    """List the accounts."""
    from pipelines.workbench import users

    cfg = _load(config)
    with _user_conn(cfg).connect() as conn:
        rows = users.list_users(conn)
    for u in rows:
        state = "active" if u.active else "disabled"
        typer.echo(f"{u.name}\t{u.role}\t{','.join(u.regions) or '*'}\t{u.lang}\t{state}")
    if not rows:
        typer.echo("no users (add one with: tiaobo users add NAME --role planner --region R)")


@decisions_app.command("import")
def decisions_import(
    file: Path,
    user: Annotated[str, typer.Option("--user", help="the account the decisions are made as")],
    config: ConfigOpt = None,
) -> None:
    """Import a decisions file (CSV in UTF-8/BOM/GBK or xlsx) as USER; bad rows are listed, good ones kept."""
    from pipelines.decisions import DecisionsError, parse_decisions
    from pipelines.workbench import service, users

    cfg = _load(config)
    try:
        parsed = parse_decisions(file)
    except DecisionsError as exc:
        _say(f"error: {exc}")
        raise typer.Exit(2) from None
    with _user_conn(cfg).begin() as conn:
        who = users.get_user(conn, user)
        if who is None or not who.active:
            _say(f"error: no active workbench user {user!r} (tiaobo users list)")
            raise typer.Exit(2)
        rep = service.import_decisions(
            conn, who, parsed, approval_limit=cfg.workbench.planner_approval_limit, source="cli"
        )
    typer.echo(rep.summary())
    for line in rep.problems:
        typer.echo(f"  {line}")
    if rep.problems and not rep.decided:
        raise typer.Exit(1)


@app.command()
def status(
    config: ConfigOpt = None,
    runs: Annotated[int, typer.Option(help="how many of the latest attempts to list")] = 10,
    lang: Annotated[str, typer.Option(help="en or zh")] = "en",
) -> None:
    """The latest runs (published, failed, stopped, running, abandoned) and what waits for planners."""
    from pipelines.status import status_lines

    if lang not in ("en", "zh"):
        _say(f"error: --lang must be en or zh, got {lang!r}")
        raise typer.Exit(2)
    cfg = _load(config)
    for line in status_lines(cfg.reporting_url(), runs=runs, lang=lang):
        typer.echo(line)


def one_line(exc: BaseException) -> str:
    """An exception as the one line a user reads: its type when that says something, and the first
    line of its message (the rest is for ``TIAOBO_DEBUG=1``)."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    kind = type(exc).__name__
    generic = kind in ("RuntimeError", "Exception", "ValueError", "LookupError")
    return f"error: {text}" if text and generic else f"error: {kind}: {text}" if text else f"error: {kind}"


def main(argv: list[str] | None = None) -> int:
    """The console entry point: exit codes, and a one-line error instead of a traceback for
    anything a command did not catch itself (``TIAOBO_DEBUG=1`` shows the traceback)."""
    import os

    import click

    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    try:
        rv = app(args=argv, standalone_mode=False)
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        return int(exc.exit_code)
    except (click.exceptions.Abort, KeyboardInterrupt):
        _say("error: interrupted")
        return 130
    except Exception as exc:
        if os.environ.get("TIAOBO_DEBUG") == "1":
            raise
        from pipelines.urls import scrub_urls

        _say(scrub_urls(one_line(exc)) + "  (TIAOBO_DEBUG=1 shows the traceback)")
        return 1
    return int(rv) if isinstance(rv, int) else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
