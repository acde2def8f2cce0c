"""Screenshots for docs/img in a real browser: the workbench (Today and a transfer's detail page),
the zh-CN morning digest and the zh-CN run report, each on a desktop (1360 px) and a phone (390 px).

Works on a copy of the demo's reporting database and on the demo's output folder (run ``make demo``
first), signs in as a temporary manager and drives Debian's chromium with Playwright. Usage:

    .venv/bin/python scripts/screenshots.py [--db var/reporting.sqlite] [--output var/output]
        [--night 2026-11-25] [--out docs/img] [--lang zh]
"""

from __future__ import annotations

import argparse
import secrets
import shutil
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlencode

import sqlalchemy as sa

from pipelines import reporting
from pipelines.config import load_config
from pipelines.workbench import users
from pipelines.workbench.app import create_app
from pipelines.workbench.server import running

CHROMIUM = "/usr/bin/chromium"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", type=Path, default=Path("var/reporting.sqlite"))
    ap.add_argument("--out", type=Path, default=Path("docs/img"))
    ap.add_argument("--lang", choices=("zh", "en"), default="zh")
    ap.add_argument("--output", type=Path, default=Path("var/output"), help="the demo's output folder")
    ap.add_argument("--night", help="the run date of the digest and report (default: the first demo night)")
    args = ap.parse_args()
    if not args.db.exists():
        print(f"error: {args.db} does not exist: run `make demo` first", file=sys.stderr)
        return 2
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="tiaobo-shots-") as tmp:
        db = Path(tmp) / "reporting.sqlite"
        shutil.copyfile(args.db, db)
        url = f"sqlite:///{db}"
        reporting.migrate(url)
        password = secrets.token_urlsafe(16)
        with reporting.engine_for(url).begin() as conn:
            users.add_user(conn, "screenshot", "manager", [], args.lang, password)
            t = reporting.OUTPUT_SA["transfers"]
            top = conn.execute(
                sa.select(t.c.run_date, t.c.sku, t.c.from_location, t.c.to_location)
                .where(t.c.approval_tier == "planner", t.c.receiver_stockout_date.is_not(None))
                .order_by(t.c.run_date.desc(), t.c.expected_benefit.desc())
                .limit(1)
            ).first()
        if top is None:
            print("error: no planner-tier transfer in the database", file=sys.stderr)
            return 2
        cfg = load_config(overrides={"reporting": {"url": url}})
        app = create_app(cfg, secret=secrets.token_urlsafe(32))
        args.out.mkdir(parents=True, exist_ok=True)
        with running(app) as base, sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
            page = browser.new_page(base_url=base, viewport={"width": 1360, "height": 900})
            page.goto("/login")
            page.fill("input[name=username]", "screenshot")
            page.fill("input[name=password]", password)
            with page.expect_navigation():
                page.click("#login")
            page.screenshot(path=str(args.out / "workbench-today.png"), full_page=False)
            q = {"date": top.run_date.isoformat(), "sku": top.sku, "from": top.from_location, "to": top.to_location}
            page.goto("/transfers/view?" + urlencode(q))
            page.screenshot(path=str(args.out / "workbench-transfer.png"), full_page=True)
            page.goto("/purchases")
            page.screenshot(path=str(args.out / "workbench-purchases.png"), full_page=False)
            browser.close()
        reporting.dispose_engine(url)
    print(
        f"wrote {args.out / 'workbench-today.png'}, {args.out / 'workbench-transfer.png'} and {args.out / 'workbench-purchases.png'}"
    )
    return digest_and_report(args.output, args.night, args.out)


#: (file suffix, viewport width, height)
SIZES = (("desktop", 1360, 900), ("390", 390, 844))


def digest_and_report(output: Path, night: str | None, out: Path) -> int:
    """The zh-CN digest (its .eml, images inlined) and report of one demo night, at each of SIZES."""
    import email
    from email import policy

    from playwright.sync_api import sync_playwright

    from pipelines.notify import inline_html

    nights = sorted(p for p in output.glob("????-??-??") if p.is_dir())
    folder = output / night if night else (nights[0] if nights else None)
    if folder is None or not folder.is_dir():
        print(f"error: no demo night in {output}: run `make demo` first", file=sys.stderr)
        return 2
    digests = []
    for eml in sorted(folder.glob("*.eml")):
        msg = email.message_from_bytes(eml.read_bytes(), policy=policy.default)
        if str(msg["Subject"]).startswith("[调拨]"):
            digests.append(msg)
    report = folder / f"report_{folder.name}.zh-CN.html"
    if not digests or not report.exists():
        print(f"error: {folder} has no zh-CN digest or report", file=sys.stderr)
        return 2
    pages = {"digest-zh": inline_html(digests[0]), "report-zh": report.read_text(encoding="utf-8")}
    written = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        for name, html in pages.items():
            for suffix, width, height in SIZES:
                page = browser.new_page(viewport={"width": width, "height": height})
                page.set_content(html, wait_until="load")
                target = out / f"{name}-{suffix}.png"
                page.screenshot(path=str(target), full_page=False)
                written.append(target.name)
                page.close()
        browser.close()
    print(f"wrote {', '.join(written)} in {out} (night {folder.name})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
