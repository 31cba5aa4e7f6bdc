"""The activity chart: a bar per time bucket, drawn on the server as SVG (no script)."""

from __future__ import annotations

from markupsafe import escape

from trek_audit.store import Histogram

__all__ = ["render_svg"]

WIDTH, HEIGHT = 960, 160
_TOP, _BOTTOM, _LEFT, _RIGHT = 18, 24, 48, 8


def render_svg(histogram: Histogram, title: str) -> str:
    """An SVG document of the histogram; every text in it is XML-escaped."""
    plot_w = WIDTH - _LEFT - _RIGHT
    plot_h = HEIGHT - _TOP - _BOTTOM
    buckets = histogram.buckets
    peak = max((count for _, count in buckets), default=0)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
        f'<rect x="0" y="0" width="{WIDTH}" height="{HEIGHT}" fill="#ffffff"/>',
        f'<line x1="{_LEFT}" y1="{HEIGHT - _BOTTOM}" x2="{WIDTH - _RIGHT}" '
        f'y2="{HEIGHT - _BOTTOM}" stroke="#888888" stroke-width="1"/>',
    ]
    if not buckets:
        parts.append(
            f'<text x="{WIDTH // 2}" y="{HEIGHT // 2}" text-anchor="middle" '
            'font-family="sans-serif" font-size="13" fill="#555555">No events</text>'
        )
    else:
        step = plot_w / len(buckets)
        bar_w = max(step - 1, 1)
        for index, (label, count) in enumerate(buckets):
            if not count:
                continue
            h = max(count / peak * plot_h, 1)
            x = _LEFT + index * step
            y = HEIGHT - _BOTTOM - h
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}" '
                'fill="#3b6ea5">'
                f"<title>{escape(label)} UTC: {count}</title></rect>"
            )
        text = 'font-family="sans-serif" font-size="11" fill="#333333"'
        parts.append(f'<text x="{_LEFT - 4}" y="{_TOP + 4}" text-anchor="end" {text}>{peak}</text>')
        parts.append(
            f'<text x="{_LEFT - 4}" y="{HEIGHT - _BOTTOM}" text-anchor="end" {text}>0</text>'
        )
        parts.append(
            f'<text x="{_LEFT}" y="{HEIGHT - 6}" {text}>{escape(buckets[0][0])} UTC</text>'
        )
        parts.append(
            f'<text x="{WIDTH - _RIGHT}" y="{HEIGHT - 6}" text-anchor="end" {text}>'
            f"{escape(buckets[-1][0])} UTC</text>"
        )
        parts.append(
            f'<text x="{WIDTH // 2}" y="{12}" text-anchor="middle" {text}>'
            f"{escape(title)}: {histogram.total} events, per {histogram.unit}</text>"
        )
    parts.append("</svg>")
    return "\n".join(parts)
