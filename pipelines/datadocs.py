"""Data Docs that work offline and say what happened to the run.

Great Expectations' Data Docs load Bootstrap, jQuery, Font Awesome and Vega from CDNs and its logo
from S3: on a machine without internet (a warehouse office, this project's CI) the pages render
unstyled. And a page of a run that validation stopped says "Succeeded" for every suite that
passed, with nothing naming the stop. After GX writes the site, :func:`make_offline` rewrites
every page: remote stylesheets, scripts and images are removed, one local stylesheet
(``static/tiaobo-offline.css``, written beside them) styles the tables and cards GX renders, and a
banner at the top of each page states the run's outcome (stopped: table, rule, nothing published;
validated: published only if the rest of the night succeeds).
"""

from __future__ import annotations

import html
import re
from pathlib import Path

#: <link ...> / <script ...></script> / <img ...> whose URL is remote (http, https or protocol-relative)
_REMOTE = re.compile(
    r"<link\b[^>]*\bhref=[\"'](?:https?:)?//[^\"']*[\"'][^>]*>"
    r"|<script\b[^>]*\bsrc=[\"'](?:https?:)?//[^\"']*[\"'][^>]*>\s*</script>"
    r"|<img\b[^>]*\bsrc=[\"'](?:https?:)?//[^\"']*[\"'][^>]*>",
    re.IGNORECASE,
)
_BODY = re.compile(r"<body\b[^>]*>", re.IGNORECASE)
_HEAD_END = re.compile(r"</head>", re.IGNORECASE)

CSS = """
body { font-family: system-ui, "Noto Sans CJK SC", "WenQuanYi Micro Hei", sans-serif; margin: 0 1.5rem 2rem;
       color: #1f2933; line-height: 1.45; }
.tiaobo-banner { margin: 1rem 0; padding: .8rem 1rem; border-radius: 6px; font-weight: 600; }
.tiaobo-banner.stopped { background: #fde8e8; border: 1px solid #e02424; color: #9b1c1c; }
.tiaobo-banner.validated { background: #e6f4ea; border: 1px solid #31a354; color: #1e5631; }
table { border-collapse: collapse; margin: .5rem 0 1rem; font-size: .9rem; }
th, td { border: 1px solid #d2d6dc; padding: .3rem .55rem; text-align: left; vertical-align: top; }
th { background: #f4f5f7; }
.card, .alert { border: 1px solid #d2d6dc; border-radius: 6px; padding: .6rem .9rem; margin: .6rem 0; }
.text-danger, .badge-danger { color: #c81e1e; } .text-success, .badge-success { color: #057a55; }
.sticky, .navbar { position: static !important; }
a { color: #1a56db; }
"""


def banner(status: str, detail: str) -> str:
    """The outcome line every page opens with (escaped)."""
    if status == "stopped":
        text = f"Validation STOPPED this run: {detail}. Nothing was published; the previous results stay."
    else:
        text = (
            f"Validation passed ({detail}); these results are published only if the rest of the night"
            " succeeds (see the run log)."
        )
    return f'<div class="tiaobo-banner {html.escape(status)}">{html.escape(text)}</div>'


def make_offline(folder: Path, status: str, detail: str) -> int:
    """Rewrite every page of the Data Docs in ``folder`` (see the module doc); returns the pages."""
    static = folder / "static"
    static.mkdir(parents=True, exist_ok=True)
    (static / "tiaobo-offline.css").write_text(CSS, encoding="utf-8")
    pages = sorted(folder.rglob("*.html"))
    note = banner(status, detail)
    for page in pages:
        text = _REMOTE.sub("", page.read_text(encoding="utf-8"))
        depth = len(page.relative_to(folder).parts) - 1
        css = f'<link rel="stylesheet" href="{"../" * depth}static/tiaobo-offline.css">'
        text = _HEAD_END.sub(lambda m, css=css: css + m.group(0), text, count=1)  # type: ignore[misc]
        text = _BODY.sub(lambda m: m.group(0) + note, text, count=1)
        page.write_text(text, encoding="utf-8")
    return len(pages)


def remote_assets(folder: Path) -> list[str]:
    """The remote asset URLs still referenced by the pages in ``folder`` (for tests and checks)."""
    found: list[str] = []
    for page in sorted(folder.rglob("*.html")):
        found += [m.group(0) for m in _REMOTE.finditer(page.read_text(encoding="utf-8"))]
    return found
