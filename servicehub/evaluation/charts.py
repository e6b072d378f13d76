"""Report charts as standalone SVG strings, drawn from plain data. Pure module: no Flask, no database.

Every function returns one `<svg>` element (with the SVG namespace, a width, a height and a viewBox) whose
text is already XML-escaped, so a page may embed it as it is (`{{ svg|safe }}`) and a PDF as an image.

- `bar_chart(title, items, value_format="{:,.0f}", width=640)`: horizontal bars, one per (label, value),
  in the given order, the value printed after each bar; a value of None is drawn as no bar and "—".
- `distribution_chart(title, counts, width=320)`: one column per score ("1" … "5"), the count above it.
- `column_chart(title, items, value_format="{:,.0f}", width=640)`: vertical columns for a period series
  (e.g. person-times per month), labels under the columns.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping, Sequence
from xml.sax.saxutils import escape, quoteattr

FONT_FAMILY = "'Noto Sans CJK SC','WenQuanYi Micro Hei',sans-serif"
BAR_COLOUR = "#2f6fb3"
AXIS_COLOUR = "#9aa5b1"
TEXT_COLOUR = "#1f2933"
MUTED_COLOUR = "#616e7c"
NO_DATA = "无数据 No data"

TITLE_SIZE = 14
LABEL_SIZE = 12
TITLE_HEIGHT = 30
ROW_HEIGHT = 22
BAR_HEIGHT = 14
PAD = 8
MAX_LABEL_SHARE = 0.4  # a bar's label takes at most this share of the chart's width
VALUE_SPACE = 84  # room right of the longest bar for its printed value


def text_width(text: str, size: float = LABEL_SIZE) -> float:
    """Roughly how wide `text` is drawn at `size` px: a full-width (CJK) character is one em, others 0.6 em."""
    return sum(size if unicodedata.east_asian_width(ch) in ("W", "F") else 0.6 * size for ch in text)


def fitted(text: str, max_width: float, size: float = LABEL_SIZE) -> str:
    """`text`, cut short with an ellipsis when it is wider than `max_width`."""
    if text_width(text, size) <= max_width:
        return text
    cut = text
    while cut and text_width(cut + "…", size) > max_width:
        cut = cut[:-1]
    return cut + "…"


def formatted(value: float | None, value_format: str) -> str:
    """The value as printed beside its bar ("—" for none)."""
    return "—" if value is None else value_format.format(value)


def _text(x: float, y: float, content: str, *, size: int = LABEL_SIZE, anchor: str = "start",
          colour: str = TEXT_COLOUR, weight: str = "normal", css_class: str = "") -> str:
    """One escaped <text> element."""
    extra = f" class={quoteattr(css_class)}" if css_class else ""
    return (f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" fill="{colour}" '
            f'font-weight="{weight}"{extra}>{escape(content)}</text>')


def _svg(title: str, width: int, height: float, body: list[str]) -> str:
    """The <svg> root around the drawn elements, with the title as its accessible name."""
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height:.0f}" '
            f'viewBox="0 0 {width} {height:.0f}" role="img" aria-label={quoteattr(title)} '
            f'font-family={quoteattr(FONT_FAMILY)}>'
            f"<title>{escape(title)}</title>"
            + _text(PAD, 20, title, size=TITLE_SIZE, weight="bold", css_class="chart-title")
            + "".join(body) + "</svg>")


def _no_data(title: str, width: int) -> str:
    """A chart with nothing to draw: its title and a note."""
    return _svg(title, width, TITLE_HEIGHT + ROW_HEIGHT + PAD,
                [_text(PAD, TITLE_HEIGHT + 15, NO_DATA, colour=MUTED_COLOUR, css_class="no-data")])


def _scale_max(values: Sequence[float | None]) -> float:
    """The largest value (1 when there is none above zero, so nothing divides by zero)."""
    return max([v for v in values if v is not None and v > 0], default=1.0)


def bar_chart(title: str, items: Sequence[tuple[str, float | None]], value_format: str = "{:,.0f}",
              width: int = 640) -> str:
    """Horizontal bars, one per (label, value) in the given order, each value printed after its bar."""
    if not items:
        return _no_data(title, width)
    label_width = min(max(text_width(str(label)) for label, _ in items), width * MAX_LABEL_SHARE)
    bar_left = PAD + label_width + PAD
    bar_room = max(width - bar_left - VALUE_SPACE, 20)
    top = _scale_max([value for _, value in items])
    body = [f'<line x1="{bar_left:.1f}" y1="{TITLE_HEIGHT - 2}" x2="{bar_left:.1f}" '
            f'y2="{TITLE_HEIGHT + ROW_HEIGHT * len(items):.1f}" stroke="{AXIS_COLOUR}" stroke-width="1"/>']
    for row, (label, value) in enumerate(items):
        y = TITLE_HEIGHT + row * ROW_HEIGHT
        middle = y + ROW_HEIGHT / 2 + LABEL_SIZE * 0.35
        length = 0.0 if value is None else max(0.0, value) / top * bar_room
        body.append(f"<g class=\"bar\"><title>{escape(str(label))}: {escape(formatted(value, value_format))}"
                    "</title>")
        body.append(_text(bar_left - PAD, middle, fitted(str(label), label_width), anchor="end",
                          css_class="label"))
        body.append(f'<rect x="{bar_left:.1f}" y="{y + (ROW_HEIGHT - BAR_HEIGHT) / 2:.1f}" width="{length:.1f}" '
                    f'height="{BAR_HEIGHT}" fill="{BAR_COLOUR}"/>')
        body.append(_text(bar_left + length + 4, middle, formatted(value, value_format), css_class="value"))
        body.append("</g>")
    return _svg(title, width, TITLE_HEIGHT + ROW_HEIGHT * len(items) + PAD, body)


def column_chart(title: str, items: Sequence[tuple[str, float | None]], value_format: str = "{:,.0f}",
                 width: int = 640, height: int = 220) -> str:
    """Vertical columns, one per (label, value) in the given order (a period series), values above them."""
    if not items:
        return _no_data(title, width)
    base = height - ROW_HEIGHT - PAD  # the axis, with room under it for the labels
    room = base - TITLE_HEIGHT - LABEL_SIZE - 6
    slot = (width - 2 * PAD) / len(items)
    column = max(min(slot * 0.6, 48), 2)
    top = _scale_max([value for _, value in items])
    body = [f'<line x1="{PAD}" y1="{base:.1f}" x2="{width - PAD}" y2="{base:.1f}" stroke="{AXIS_COLOUR}" '
            'stroke-width="1"/>']
    for k, (label, value) in enumerate(items):
        centre = PAD + slot * (k + 0.5)
        length = 0.0 if value is None else max(0.0, value) / top * room
        body.append(f"<g class=\"bar\"><title>{escape(str(label))}: {escape(formatted(value, value_format))}"
                    "</title>")
        body.append(f'<rect x="{centre - column / 2:.1f}" y="{base - length:.1f}" width="{column:.1f}" '
                    f'height="{length:.1f}" fill="{BAR_COLOUR}"/>')
        body.append(_text(centre, base - length - 4, formatted(value, value_format), size=LABEL_SIZE - 2,
                          anchor="middle", css_class="value"))
        body.append(_text(centre, base + LABEL_SIZE + 2, fitted(str(label), slot - 2, LABEL_SIZE - 2),
                          size=LABEL_SIZE - 2, anchor="middle", css_class="label"))
        body.append("</g>")
    return _svg(title, width, height, body)


def distribution_chart(title: str, counts: Mapping[str, int], width: int = 320) -> str:
    """One column per score of a distribution (e.g. satisfaction "1" … "5"), the count above each."""
    if not counts or not any(counts.values()):
        return _no_data(title, width)
    return column_chart(title, [(str(score), count) for score, count in counts.items()], "{:,.0f}", width,
                        height=180)
