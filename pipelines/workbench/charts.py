"""Small server-rendered SVG charts (no JavaScript): projected stock with a forecast band, KPI trends.

Every text is escaped; the SVG uses presentation attributes only (no ``style``), so the page's
Content-Security-Policy needs no ``unsafe-inline``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from html import escape

from markupsafe import Markup

W, H, PAD_L, PAD_R, PAD_T, PAD_B = 560, 230, 48, 12, 14, 46


def _scale(lo: float, hi: float, a: float, b: float):
    span = (hi - lo) or 1.0
    return lambda v: a + (v - lo) / span * (b - a)


def _path(xs: Sequence[float], ys: Sequence[float]) -> str:
    return " ".join(f"{'M' if i == 0 else 'L'}{x:.1f},{y:.1f}" for i, (x, y) in enumerate(zip(xs, ys, strict=True)))


def stock_chart(
    days: Sequence[date],
    lines: dict[str, Sequence[float]],
    band: tuple[Sequence[float], Sequence[float]] | None,
    guides: dict[str, float],
    title: str,
    band_label: str = "",
) -> Markup:
    """Projected stock per day: one polyline per entry of ``lines`` (first is drawn strongest), an
    optional shaded ``band`` (low, high), horizontal ``guides`` (e.g. reorder point)."""
    if not days:
        return Markup("")
    values = [v for s in lines.values() for v in s] + list(guides.values())
    if band:
        values += list(band[0]) + list(band[1])
    lo, hi = min(0.0, min(values)), max(values) * 1.05 + 1e-9
    sx = _scale(0, max(len(days) - 1, 1), PAD_L, W - PAD_R)
    sy = _scale(lo, hi, H - PAD_B, PAD_T)
    xs = [sx(i) for i in range(len(days))]
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" width="{W}" height="{H}" role="img"'
        f' aria-label="{escape(title)}" class="chart">',
        f"<title>{escape(title)}</title>",
        f'<line x1="{PAD_L}" y1="{sy(0):.1f}" x2="{W - PAD_R}" y2="{sy(0):.1f}" stroke="#999" stroke-width="1"/>',
    ]
    if band:
        top = [f"{x:.1f},{sy(v):.1f}" for x, v in zip(xs, band[1], strict=True)]
        bottom = [f"{x:.1f},{sy(v):.1f}" for x, v in zip(reversed(xs), reversed(band[0]), strict=True)]
        parts.append(
            f'<polygon points="{" ".join(top + bottom)}" fill="#9ecae1" fill-opacity="0.45" stroke="none">'
            f"<title>{escape(band_label)}</title></polygon>"
        )
    colors = ["#08519c", "#d94801", "#636363", "#31a354"]
    for i, (name, ys) in enumerate(lines.items()):
        dash = "" if i == 0 else ' stroke-dasharray="5,3"'
        parts.append(
            f'<path d="{_path(xs, [sy(v) for v in ys])}" fill="none" stroke="{colors[i % 4]}" stroke-width="2"{dash}>'
            f"<title>{escape(name)}</title></path>"
        )
    for name, v in guides.items():
        parts.append(
            f'<line x1="{PAD_L}" y1="{sy(v):.1f}" x2="{W - PAD_R}" y2="{sy(v):.1f}" stroke="#a50f15"'
            f' stroke-width="1" stroke-dasharray="2,3"/><text x="{W - PAD_R - 2}" y="{sy(v) - 3:.1f}"'
            f' text-anchor="end" font-size="10" fill="#a50f15">{escape(name)} {v:,.0f}</text>'
        )
    for frac in (0.0, 0.5, 1.0):
        v = lo + (hi - lo) * frac
        parts.append(
            f'<text x="{PAD_L - 4}" y="{sy(v) + 3:.1f}" text-anchor="end" font-size="10" fill="#555">{v:,.0f}</text>'
        )
    for i in sorted({0, len(days) // 2, len(days) - 1}):
        parts.append(
            f'<text x="{xs[i]:.1f}" y="{H - PAD_B + 14}" text-anchor="middle" font-size="10" fill="#555">{days[i]:%m-%d}</text>'
        )
    # legend in one row under the date axis, clear of the lines
    names = [(colors[i % 4], f"— {name}") for i, name in enumerate(lines)]
    if band and band_label:
        names.append(("#3182bd", f"▮ {band_label}"))
    step = (W - PAD_L - PAD_R) / max(len(names), 1)
    for i, (color, text) in enumerate(names):
        parts.append(
            f'<text x="{PAD_L + i * step:.1f}" y="{H - 6}" font-size="10" fill="{color}">{escape(text)}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def _num(v: float) -> str:
    return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.4g}"


def trend_chart(days: Sequence[date], values: Sequence[float | None], title: str) -> Markup:
    """A KPI over run dates (gaps where the value is missing)."""
    pts = [(d, v) for d, v in zip(days, values, strict=True) if v is not None]
    if len(pts) < 2:  # a trend needs two nights; the page shows the latest value anyway
        return Markup("")
    lo, hi = min(v for _, v in pts), max(v for _, v in pts)
    if hi == lo:
        lo, hi = lo - 1, hi + 1
    w, h = 320, 120
    sx = _scale(0, max(len(days) - 1, 1), 40, w - 8)
    sy = _scale(lo, hi, h - 22, 10)
    idx = {d: i for i, d in enumerate(days)}
    xs = [sx(idx[d]) for d, _ in pts]
    ys = [sy(v) for _, v in pts]
    dots = "".join(
        f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="#08519c"><title>{d} {_num(v)}</title></circle>'
        for x, y, (d, v) in zip(xs, ys, pts, strict=True)
    )
    return Markup(
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img"'
        f' aria-label="{escape(title)}" class="chart"><title>{escape(title)}</title>'
        f'<path d="{_path(xs, ys)}" fill="none" stroke="#08519c" stroke-width="2"/>{dots}'
        f'<text x="36" y="{sy(hi) + 4:.1f}" text-anchor="end" font-size="10" fill="#555">{_num(hi)}</text>'
        f'<text x="36" y="{sy(lo) + 4:.1f}" text-anchor="end" font-size="10" fill="#555">{_num(lo)}</text>'
        f'<text x="{xs[0]:.1f}" y="{h - 6}" font-size="10" fill="#555">{pts[0][0]:%m-%d}</text>'
        f'<text x="{xs[-1]:.1f}" y="{h - 6}" text-anchor="end" font-size="10" fill="#555">{pts[-1][0]:%m-%d}</text>'
        "</svg>"
    )
