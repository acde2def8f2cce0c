"""The morning digest in a real headless Chromium (Debian's /usr/bin/chromium): at a phone's 390 px
nothing is cut off (no sideways scrolling, every table row a card naming its columns); on a
desktop the tables keep their header row."""

from __future__ import annotations

import shutil

import pytest

from pipelines.config import RecipientGroup, load_config
from pipelines.notify import build_digest, inline_html
from pipelines.report import labels
from tests.factories import WB_DATE, WB_RUN_ID, workbench_night

pytestmark = pytest.mark.integration

CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="module")
def digest_html() -> str:
    frames = workbench_night()
    cfg = load_config(overrides={"workbench": {"base_url": "https://tiaobo.example.com/"}})
    items = frames["item_master"].drop(columns=["run_date", "run_id"])
    locations = frames["location_master"].drop(columns=["run_date", "run_id"])
    summary = {"run_date": WB_DATE.isoformat(), "run_id": WB_RUN_ID}
    group = RecipientGroup(name="全部", recipients=["zh@example.com"], language="zh-CN")
    return inline_html(build_digest(frames, summary, group, cfg, locations, items))


@pytest.fixture(scope="module")
def browser():
    if shutil.which(CHROMIUM) is None:
        pytest.fail(f"{CHROMIUM} is missing: `make browser` installs Debian's chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        yield b
        b.close()


def test_digest_fits_a_390_px_phone(browser, digest_html):
    page = browser.new_page(viewport={"width": 390, "height": 844})
    page.set_content(digest_html)
    assert "cid:" not in digest_html
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the digest is {width} px wide at 390 px"
    # the transfers table: header row hidden, each cell labelled with its column
    assert not page.locator("table.transfers tr.head").is_visible()
    cell = page.locator("table.transfers td[data-label]").first
    assert cell.is_visible() and cell.get_attribute("data-label") == labels("zh-CN")["sku"]
    label = page.evaluate(
        "getComputedStyle(document.querySelector('table.transfers td[data-label]'), '::before').content"
    )
    assert labels("zh-CN")["sku"] in label
    for img in page.locator("img").all():  # the KPI charts shrink to the screen
        assert img.bounding_box()["width"] <= 390
    page.close()


def test_digest_on_a_desktop_keeps_its_table_headers(browser, digest_html):
    page = browser.new_page(viewport={"width": 1360, "height": 900})
    page.set_content(digest_html)
    assert page.locator("table.transfers tr.head").is_visible()
    assert page.locator("#today").is_visible()
    page.close()
