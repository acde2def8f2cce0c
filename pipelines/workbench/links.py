"""Links into the workbench (light: the digest email imports it without the web stack)."""

from __future__ import annotations

from datetime import date
from urllib.parse import urlencode


def transfer_link(base_url: str, run_date: date, sku: str, from_location: str, to_location: str) -> str:
    """``{base_url}/transfers/view?date=...&sku=...&from=...&to=...`` (the transfer's detail page)."""
    q = urlencode({"date": run_date.isoformat(), "sku": sku, "from": from_location, "to": to_location})
    return f"{base_url.rstrip('/')}/transfers/view?{q}"
