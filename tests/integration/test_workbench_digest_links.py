"""Digest emails link each transfer to its workbench page when workbench.base_url is configured."""

from __future__ import annotations

import pytest

from pipelines.config import RecipientGroup, load_config
from pipelines.notify import build_digest
from tests.factories import WB_DATE, WB_RUN_ID, workbench_night

pytestmark = pytest.mark.integration  # renders the digest (Jinja2, KPI charts)

GROUP = RecipientGroup(name="east", recipients=["east@example.com"], language="en", regions=["华东"])


def _bodies(base_url: str | None) -> tuple[str, str]:
    frames = workbench_night()
    cfg = load_config(overrides={"workbench": {"base_url": base_url}})
    items = frames["item_master"].drop(columns=["run_date", "run_id"])
    locations = frames["location_master"].drop(columns=["run_date", "run_id"])
    summary = {"run_date": WB_DATE.isoformat(), "run_id": WB_RUN_ID}
    msg = build_digest(frames, summary, GROUP, cfg, locations, items)
    html = msg.get_body(preferencelist=("html",))
    text = msg.get_body(preferencelist=("plain",))
    assert html is not None and text is not None
    return html.get_content(), text.get_content()


def test_digest_links_to_the_workbench_detail_page():
    html, text = _bodies("https://tiaobo.example.com/")
    link = "https://tiaobo.example.com/transfers/view?date=2026-11-24&amp;sku=A&amp;from=DC1&amp;to=S1"
    assert f'<a href="{link}">A</a>' in html
    assert "https://tiaobo.example.com/transfers/view?date=2026-11-24&sku=A&from=DC1&to=S1" in text
    assert "tiaobo.example.com/transfers/view" not in _bodies(None)[0]  # no base URL: no links


def test_digest_points_to_the_workbench_not_to_a_file_on_the_server():
    html, text = _bodies("https://tiaobo.example.com/")
    assert (
        '<a href="https://tiaobo.example.com/">Review and decide in the workbench: https://tiaobo.example.com/</a>'
        in html
    )
    assert "Review and decide in the workbench: https://tiaobo.example.com/" in text
    assert "output folder" not in html and "output folder" not in text
    html, text = _bodies(None)  # no workbench: the report file is all there is
    assert "output folder" in html and "workbench" not in html.lower().replace("tiaobo", "")
