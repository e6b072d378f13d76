"""Report charts: standalone SVG from plain data, text escaped, one bar per item, values printed."""

import xml.etree.ElementTree as ET

from servicehub.evaluation import charts

SVG = "{http://www.w3.org/2000/svg}"


def parsed(svg: str) -> ET.Element:
    """The chart as an XML tree (fails when the SVG is not well-formed)."""
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    return root


def texts(root: ET.Element, css_class: str) -> list[str]:
    """The text of every <text> of a class, in document order."""
    return [t.text for t in root.iter(f"{SVG}text") if t.get("class") == css_class]


def bars(root: ET.Element) -> list[ET.Element]:
    """The drawn bars (the rect of each bar group)."""
    return [g.find(f"{SVG}rect") for g in root.iter(f"{SVG}g") if g.get("class") == "bar"]


def test_a_bar_chart_has_one_bar_per_item_with_its_label_and_value_in_order():
    root = parsed(charts.bar_chart("服务人次（按机构）", [("颐养服务中心", 120), ("阳光社工", 60), ("空", 0)]))
    assert root.get("width") == "640" and root.get("viewBox").startswith("0 0 640 ")
    assert texts(root, "chart-title") == ["服务人次（按机构）"] and root.find(f"{SVG}title").text == "服务人次（按机构）"
    assert texts(root, "label") == ["颐养服务中心", "阳光社工", "空"]
    assert texts(root, "value") == ["120", "60", "0"]
    widths = [float(rect.get("width")) for rect in bars(root)]
    assert widths[0] == 2 * widths[1] > 0 and widths[2] == 0
    assert charts.FONT_FAMILY in root.get("font-family") and "WenQuanYi Micro Hei" in root.get("font-family")


def test_values_use_the_given_format_and_none_is_no_bar():
    root = parsed(charts.bar_chart("准时率", [("甲", 0.9512), ("乙", None)], value_format="{:.1%}", width=400))
    assert texts(root, "value") == ["95.1%", "—"]
    assert float(bars(root)[1].get("width")) == 0
    money = parsed(charts.bar_chart("交付金额", [("甲", 12345.5)], value_format="¥{:,.2f}"))
    assert texts(money, "value") == ["¥12,345.50"]


def test_text_is_escaped_so_markup_in_names_stays_text():
    title = 'A <b>&"title"'
    svg = charts.bar_chart(title, [("<script>alert(1)</script> & co", 3)])
    assert "<script>" not in svg and "<b>" not in svg
    root = parsed(svg)
    assert texts(root, "chart-title") == [title] and root.get("aria-label") == title
    assert texts(root, "label") == ["<script>alert(1)</script> & co"]


def test_a_long_label_is_cut_with_an_ellipsis_and_kept_whole_in_the_tooltip():
    long_name = "镇江新区某某街道社会工作服务中心居家养老服务部第二分部"
    root = parsed(charts.bar_chart("人次", [(long_name, 5)], width=400))
    (label,) = texts(root, "label")
    assert label.endswith("…") and long_name.startswith(label[:-1]) and len(label) < len(long_name)
    assert charts.text_width(label) <= 400 * charts.MAX_LABEL_SHARE
    assert [g.find(f"{SVG}title").text for g in root.iter(f"{SVG}g")] == [f"{long_name}: 5"]


def test_the_distribution_has_five_columns_with_counts_and_scores():
    root = parsed(charts.distribution_chart("满意度分布", {"1": 0, "2": 1, "3": 2, "4": 10, "5": 20}))
    assert root.get("width") == "320"
    assert texts(root, "label") == ["1", "2", "3", "4", "5"]
    assert texts(root, "value") == ["0", "1", "2", "10", "20"]
    heights = [float(rect.get("height")) for rect in bars(root)]
    assert heights == sorted(heights) and heights[0] == 0 and heights[4] == 2 * heights[3]


def test_a_period_series_is_drawn_as_columns_in_order():
    root = parsed(charts.column_chart("服务人次（按月）", [("2026-09", 300), ("2026-10", 450), ("2026-11", 150)]))
    assert texts(root, "label") == ["2026-09", "2026-10", "2026-11"]
    heights = [float(rect.get("height")) for rect in bars(root)]
    assert heights[1] == max(heights) and round(heights[0] / heights[1], 2) == round(300 / 450, 2)
    assert round(heights[2] / heights[0], 2) == 0.5
    assert texts(root, "value") == ["300", "450", "150"]


def test_nothing_to_draw_gives_a_chart_that_says_so():
    for svg in (charts.bar_chart("空", []), charts.distribution_chart("满意度", {"1": 0, "5": 0}),
                charts.column_chart("空", [])):
        root = parsed(svg)
        assert bars(root) == [] and texts(root, "no-data") == [charts.NO_DATA]
