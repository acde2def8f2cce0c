"""The planner workbench in a real headless Chromium (Debian's /usr/bin/chromium driven by Playwright).

One uvicorn server on a free loopback port serves a small published night (tests/factories.py
``workbench_night`` plus lines for the bulk and conflict cases). Each test works on its own lines.
"""

from __future__ import annotations

import re
import shutil
from datetime import timedelta
from urllib.parse import urlencode

import pytest

from pipelines import reporting
from pipelines.config import load_config
from pipelines.workbench.app import create_app
from pipelines.workbench.server import running
from tests.factories import WB_DATE, XSS_NAME, add_workbench_users, publish_workbench_night

pytestmark = pytest.mark.integration

CHROMIUM = "/usr/bin/chromium"
PASSWORD = "correct-horse-9"
SECRET = "s" * 48


def _extra() -> list[dict]:
    base = {
        "from_location": "DC1",
        "packs": 1,
        "transfer_cost": 5.0,
        "donor_excess_units": 0.0,
        "receiver_units_short": 1.0,
        "receiver_stockout_date": WB_DATE + timedelta(days=4),
    }
    lines = [
        {**base, "sku": f"BULK-{i}", "to_location": "S2", "quantity": 1.0, "expected_benefit": 10.0 + i}
        for i in range(3)
    ]
    lines.append({**base, "sku": "D", "to_location": "S1", "quantity": 3.0, "expected_benefit": 7.0})
    lines.append({**base, "sku": "E", "to_location": "S1", "quantity": 2.0, "expected_benefit": 6.0})
    return [{**x, "explanation_en": f"Move {x['sku']}.", "explanation_zh": f"调 {x['sku']}。"} for x in lines]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    if shutil.which(CHROMIUM) is None:
        pytest.fail(f"{CHROMIUM} is missing: `make browser` installs Debian's chromium")
    path = tmp_path_factory.mktemp("wb") / "reporting.sqlite"
    url = f"sqlite:///{path}"
    publish_workbench_night(url, extra_transfers=_extra())
    add_workbench_users(url, PASSWORD)
    cfg = load_config(
        overrides={
            "reporting": {"url": url},
            "workbench": {"planner_approval_limit": 5000.0, "login_max_failures": 5, "page_size": 50},
        }
    )
    app = create_app(cfg, secret=SECRET)
    with running(app) as base:
        yield base
    reporting.dispose_engine(url)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture(scope="module")
def signed_in(browser, site):
    """Storage state (the session cookie) per user, signed in once per module through the login page."""
    states: dict[str, dict] = {}

    def state(name: str) -> dict:
        if name not in states:
            ctx = browser.new_context(base_url=site)
            page = ctx.new_page()
            login(page, name, PASSWORD)
            assert page.locator("#me").inner_text() == name
            states[name] = ctx.storage_state()
            ctx.close()
        return states[name]

    return state


@pytest.fixture
def page_as(browser, site, signed_in):
    """page_as(name, fresh=False) -> a signed-in page in its own browser context (fresh: a new login)."""
    contexts = []

    def make(name: str, fresh: bool = False):
        ctx = browser.new_context(base_url=site, storage_state=None if fresh else signed_in(name))
        ctx.set_default_timeout(5000)
        contexts.append(ctx)
        page = ctx.new_page()
        dialogs: list[str] = []
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.dialogs = dialogs  # type: ignore[attr-defined]
        if fresh:
            login(page, name, PASSWORD)
        else:
            page.goto("/")
        assert page.locator("#me").inner_text() == name
        return page

    yield make
    for ctx in contexts:
        ctx.close()


def login(page, name: str, password: str):
    page.goto("/login")
    page.fill("input[name=username]", name)
    page.fill("input[name=password]", password)
    with page.expect_navigation():
        page.click("#login")


def detail(page, sku: str, src: str, dst: str) -> None:
    page.goto("/transfers/view?" + urlencode({"date": WB_DATE.isoformat(), "sku": sku, "from": src, "to": dst}))


def submit(page, button: str) -> int:
    with page.expect_navigation() as nav:
        page.click(button)
    return nav.value.status


def test_login_today_and_filters(page_as):
    page = page_as("east")
    page.goto("/")
    # the stockout of B at S1 is at the top of its own list; the larger near-expiry value is below
    stockouts = page.locator("table.today").nth(0)
    assert "B" in stockouts.locator("tr").nth(1).inner_text()
    other = page.locator("table.today").nth(1).inner_text()
    assert "30,000" in other and "30,000" not in stockouts.inner_text()
    page.goto("/transfers")
    assert page.locator("#transfers tbody tr").count() == 8  # every line touching 华东 (X S2→S3 is not)
    page.fill("input[name=q]", "洗洁精")
    with page.expect_navigation():
        page.click("#apply-filter")
    skus = page.locator("#transfers tbody tr").evaluate_all("rows => rows.map(r => r.dataset.sku)")
    assert skus == ["A", "A"]
    page.select_option("select[name=location]", "S2")
    with page.expect_navigation():
        page.click("#apply-filter")
    assert page.locator("#transfers tbody tr").evaluate_all("rows => rows.map(r => r.dataset.to)") == ["S2"]
    # the language toggle is stored on the user
    with page.expect_navigation():
        page.click("#lang-toggle")
    assert page.locator("header").inner_text().count("Transfers") == 1
    with page.expect_navigation():
        page.click("#lang-toggle")
    assert "调拨建议" in page.locator("header").inner_text()


def test_approve_change_quantity_and_reject_with_reason(page_as):
    page = page_as("east")
    detail(page, "A", "DC1", "S1")
    assert "从 DC1 调 12 件 A 到 S1" in page.locator("#explanation").inner_text()
    assert page.locator("svg.chart").count() == 2  # receiver and donor projections
    assert submit(page, "#approve") == 200
    assert "版本 1" in page.locator(".msg.ok").inner_text()
    # the browser's own step check would stop 13; drop it to show that the server refuses it too
    page.eval_on_selector("#quantity", "e => { e.removeAttribute('step'); e.removeAttribute('min'); }")
    page.fill("#quantity", "13")
    assert submit(page, "#change-quantity") == 422
    assert "not whole packs of 6" in page.locator(".msg.error").inner_text()
    page.fill("#quantity", "18")
    assert submit(page, "#change-quantity") == 200
    assert [r.split("\t")[0] for r in page.locator("#history tr").all_inner_texts()[1:]] == ["1", "2"]
    detail(page, "A", "DC1", "S2")
    page.select_option("#reason-code", "other")
    assert submit(page, "#reject") == 422
    assert "needs a free text" in page.locator(".msg.error").inner_text()
    page.select_option("#reason-code", "other")
    page.fill("#reason-text", "门店已自行补货")
    assert submit(page, "#reject") == 200
    assert "门店已自行补货" in page.locator("#history").inner_text()


def test_bulk_approve_selected_lines(page_as):
    page = page_as("east")
    page.goto("/transfers?q=bulk-")
    assert page.locator("input[name=line]").count() == 3
    page.check("#select-all")  # the page's only script ticks every line
    assert page.locator("input[name=line]:checked").count() == 3
    assert submit(page, "#bulk-approve") == 200
    assert "已批准 3 行" in page.locator(".msg.ok").inner_text()
    assert page.locator("#transfers .badge.approve").count() == 3


def test_conflict_between_two_browser_contexts(page_as):
    east, boss = page_as("east"), page_as("boss")
    detail(east, "D", "DC1", "S1")
    detail(boss, "D", "DC1", "S1")
    assert submit(east, "#approve") == 200
    boss.select_option("#reason-code", "data_wrong")
    assert submit(boss, "#reject") == 409
    msg = boss.locator(".msg.error").inner_text()
    assert re.search(r"already decided by east at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC \(approve, version 1\)", msg)
    assert "east" in boss.locator("#current-decision").inner_text()  # the page now shows the winner


def test_planner_refused_outside_region_and_above_authority(page_as):
    page = page_as("east")
    detail(page, "X", "S2", "S3")  # 华南 -> 华北: not east's
    assert "您的区域内没有这条建议" in page.locator(".msg.error").inner_text()
    csrf = page.locator("input[name=csrf_token]").first.get_attribute("value")
    form = {"csrf_token": csrf, "date": WB_DATE.isoformat(), "sku": "X", "from": "S2", "to": "S3"}
    r = page.request.post("/transfers/decide", form={**form, "version": "0", "action": "approve"})
    assert r.status == 403 and "outside your regions" in r.text()
    detail(page, "B", "DC1", "S1")  # 20 x 500 = 10,000 > 5,000
    assert submit(page, "#approve") == 403
    assert "above your approval limit 5,000" in page.locator(".msg.error").inner_text()
    form = {**form, "sku": "B", "from": "DC1", "to": "S1", "version": "0", "action": "approve"}
    r = page.request.post("/transfers/decide", form=form)
    assert r.status == 403 and "a manager must approve it" in r.text()
    r = page.request.post("/transfers/bulk-approve", form={"csrf_token": csrf, "line": f"{WB_DATE}|B|DC1|S1|0"})
    assert r.status == 403


def test_post_without_csrf_token_is_refused(page_as):
    page = page_as("east")
    form = {"date": WB_DATE.isoformat(), "sku": "E", "from": "DC1", "to": "S1", "version": "0", "action": "approve"}
    r = page.request.post("/transfers/decide", form=form)
    assert r.status == 403
    r = page.request.post("/transfers/decide", form={**form, "csrf_token": "forged"})
    assert r.status == 403
    r = page.request.post("/logout", form={})
    assert r.status == 403
    page.goto("/transfers?q=E")
    assert "待审批" in page.locator("#transfers tbody tr[data-sku=E]").inner_text()  # nothing was decided


def test_script_in_an_item_name_is_shown_as_text(page_as):
    page = page_as("boss")
    page.goto("/transfers?q=X")
    cell = page.locator("#transfers td.item-name").first
    assert cell.inner_text() == XSS_NAME
    detail(page, "X", "S2", "S3")
    assert XSS_NAME in page.locator("h1").inner_text()
    assert page.dialogs == []  # type: ignore[attr-defined]
    assert page.locator("script:not([src])").count() == 0


def test_logout_ends_the_session(page_as):
    page = page_as("south", fresh=True)
    cookies = page.context.cookies()
    assert any(c["name"] == "tiaobo_session" and c["httpOnly"] and c["sameSite"] == "Lax" for c in cookies)
    with page.expect_navigation():
        page.click("#logout")
    assert "/login" in page.url
    page.context.add_cookies(cookies)  # the old cookie is revoked on the server, not only forgotten
    page.goto("/transfers")
    assert "/login" in page.url


def test_login_throttled_after_repeated_failures(browser, site):
    ctx = browser.new_context(base_url=site)
    ctx.set_default_timeout(5000)
    page = ctx.new_page()
    for _ in range(5):
        login(page, "root", "wrong-password")
        assert "用户名或密码错误" in page.locator(".msg.error").inner_text()
    resp = None
    page.goto("/login")
    page.fill("input[name=username]", "root")
    page.fill("input[name=password]", PASSWORD)  # even the right password is refused now
    with page.expect_navigation() as nav:
        page.click("#login")
    resp = nav.value
    assert resp.status == 429 and "15" in page.locator(".msg.error").inner_text()
    ctx.close()


def test_security_headers(page_as):
    page = page_as("boss")
    r = page.request.get("/transfers")
    h = r.headers
    assert h["x-frame-options"] == "DENY"
    assert "script-src 'self'" in h["content-security-policy"] and "unsafe-inline" not in h["content-security-policy"]


def test_upload_a_gbk_file_reports_bad_lines_and_imports_the_rest(page_as, tmp_path):
    page = page_as("east")
    f = tmp_path / "决定.csv"
    f.write_bytes(
        (
            "run_date,sku,from_location,to_location,decision,quantity\n"
            f"{WB_DATE:%Y/%m/%d},E,DC1,S1,批准,2\n"
            f"{WB_DATE},E,DC1,S1,maybe,2\n"
        ).encode("gbk")
    )
    page.goto("/upload")
    page.set_input_files("#file", str(f))
    assert submit(page, "#upload") == 200
    assert "已导入 1 条审批" in page.locator(".msg.ok").inner_text()
    assert page.locator("#problems li").all_inner_texts() == [
        "line 3: column 'decision' rule 'approve or reject (批准 / 拒绝)' fails (value 'maybe')"
    ]
    page.goto("/transfers?q=E")
    assert "已批准 2" in page.locator("#transfers tbody tr[data-sku=E]").inner_text()


def test_purchases_page_approve_reject_and_the_server_refuses_what_it_must(page_as):
    page = page_as("south")
    with page.expect_navigation():
        page.click("header a[href='/purchases']")
    rows = page.locator("#purchases tbody tr")
    assert rows.evaluate_all("rs => rs.map(r => r.dataset.sku + '@' + r.dataset.location)") == ["B@S2"]  # 华南 only
    b = page.locator("#purchases tr[data-sku=B]")
    assert "none recorded" in b.inner_text() and "Order 10 B for S2." in b.inner_text()  # south reads English
    # no supplier recorded: the approval must name one; the server says so
    assert submit(page, "#purchases tr[data-sku=B] button.approve") == 422
    assert "[supplier]" in page.locator(".msg.error").inner_text()
    page.fill("#purchases tr[data-sku=B] input[name=supplier]", "南方电器")
    page.fill("#purchases tr[data-sku=B] input[name=quantity]", "12")  # 12 x 480 = 5,760 > 5,000
    assert submit(page, "#purchases tr[data-sku=B] button.approve") == 403
    assert "a manager must approve it" in page.locator(".msg.error").inner_text()
    page.fill("#purchases tr[data-sku=B] input[name=supplier]", "南方电器")
    assert submit(page, "#purchases tr[data-sku=B] button.approve") == 200
    assert "(version 1)" in page.locator(".msg.ok").inner_text()
    assert "南方电器" in page.locator("#purchases tr[data-sku=B] .status").inner_text()
    # another region's proposal by a forged form: refused on the server, CSRF first
    csrf = page.locator("input[name=csrf_token]").first.get_attribute("value")
    form = {"date": WB_DATE.isoformat(), "sku": "A", "location": "S1", "version": "0", "action": "approve"}
    assert page.request.post("/purchases/decide", form=form).status == 403  # no CSRF token
    r = page.request.post("/purchases/decide", form={**form, "csrf_token": csrf})
    assert r.status == 403 and "outside your regions" in r.text()
    east = page_as("east")
    east.goto("/purchases")
    a = "#purchases tr[data-sku=A]"
    east.fill(f"{a} input[name=quantity]", "30")  # not a multiple of 12
    assert submit(east, f"{a} button.approve") == 422
    assert "not a multiple of the order multiple 12" in east.locator(".msg.error").inner_text()
    east.select_option(f"{a} select[name=reason_code]", "already_ordered")
    assert submit(east, f"{a} button.reject") == 200
    assert "已拒绝" in east.locator(f"{a} .status").inner_text() and "未记录" not in east.locator(a).inner_text()


def test_script_in_a_supplier_name_is_shown_as_text(page_as):
    page = page_as("boss")
    page.goto("/purchases?q=X")
    assert XSS_NAME in page.locator("#purchases tr[data-sku=X]").inner_text()
    assert page.dialogs == []  # type: ignore[attr-defined]
    assert page.locator("script:not([src])").count() == 0
