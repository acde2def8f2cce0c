"""Screenshots of the workbench for docs/img: Today and a transfer's detail page, in a real browser.

Works on a copy of the demo's reporting database (run ``make demo`` first), signs in as a
temporary manager and drives Debian's chromium with Playwright. Usage:

    .venv/bin/python scripts/screenshots.py [--db var/reporting.sqlite] [--out docs/img] [--lang zh]
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
            browser.close()
        reporting.dispose_engine(url)
    print(f"wrote {args.out / 'workbench-today.png'} and {args.out / 'workbench-transfer.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
