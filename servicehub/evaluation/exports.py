"""Report downloads: CSV, XLSX and PDF from one report document (`services.build_document`).

The renderers read only the document (never the database), so a frozen report comes out exactly as it was
issued, and the definitions they print are the document's own, word for word.
"""

from __future__ import annotations

import csv
import io
from copy import copy
from datetime import date, datetime, tzinfo
from functools import cache

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Alignment, Font
from openpyxl.utils import get_column_letter

from servicehub.auth.permissions import Principal
from servicehub.auth.reads import record_read
from servicehub.evaluation import charts, services
from servicehub.evaluation.kpis import DEFINITION_BY_CODE, FIGURES, PERIODS
from servicehub.timeutil import district_tz
from servicehub.web.format import yuan

MIMETYPES = {
    "csv": "text/csv",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "pdf": "application/pdf",
}


def export_report(principal: Principal, fmt: str, first: date, last: date, group_by=(), **filters) -> tuple[bytes, str]:
    """A report the caller may run, as a file: (content, file name without extension)."""
    # Only the XLSX lists the records; CSV and PDF count them at most, so they need not be built.
    document = services.report_document(principal, first, last, group_by, with_records=fmt == "xlsx", **filters)
    content = render(document, fmt)
    record_read("export_downloaded", "reports", None, export="kpi_report", format=fmt, first=first, last=last,
                group_by=list(group_by), filters={k: v for k, v in filters.items() if v not in (None, [], ())},
                records=record_count(document))
    return content, f"servicehub-kpis-{first.isoformat()}-{last.isoformat()}"


def export_frozen(principal: Principal, frozen_id: int, fmt: str) -> tuple[bytes, str]:
    """A frozen report as a file, rendered from what was stored when it was issued."""
    document = services.frozen_document(principal, frozen_id)
    content = render(document, fmt)
    query = document.get("query") or {}
    record_read("export_downloaded", "frozen_reports", frozen_id, export="frozen_report", format=fmt,
                first=query.get("from"), last=query.get("to"), records=record_count(document))
    return content, f"servicehub-frozen-report-{frozen_id}"


def record_count(document: dict) -> int:
    """How many records the document's figures were computed from (listed or not)."""
    return document.get("record_count", len(document.get("records", [])))


def render(document: dict, fmt: str) -> bytes:
    """The document in `fmt` (csv, xlsx, pdf)."""
    return {"csv": render_csv, "xlsx": render_xlsx, "pdf": render_pdf}[fmt](document)


def group_label(report: dict, key: dict, lang: str = "zh") -> list[str]:
    """A group's key in words: the names of its organisation, service type … and its period label."""
    labels = report.get("labels", {})
    return [no_formula(labels.get(name, {}).get(str(value), {}).get(lang, str(value))) if value is not None else "—"
            for name, value in key.items()]


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def no_formula(text: str) -> str:
    """A name as a spreadsheet cell shows it, never as a formula: a name typed as '=HYPERLINK(…)' gets a
    leading apostrophe (CSV and XLSX would otherwise run it)."""
    return f"'{text}" if isinstance(text, str) and text.startswith(FORMULA_STARTS) else text


def render_csv(document: dict) -> bytes:
    """One row per group (and the total), one column per figure; UTF-8 with a BOM so Excel reads Chinese."""
    report = document["report"]
    out = io.StringIO()
    writer = csv.writer(out)
    names = list(report["group_by"])
    writer.writerow(names + [f"{DEFINITION_BY_CODE[code].name_zh} ({code})" for code in FIGURES])
    rows = [(group_label(report, g["key"]), g["figures"]) for g in report["groups"]]
    rows.append((["合计 total"] + [""] * (len(names) - 1) if names else [], report["total"]))
    for label, figures in rows:
        writer.writerow(label + [_cell(figures.get(code)) for code in FIGURES])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, dict):
        return " ".join(f"{k}:{v}" for k, v in value.items())
    return str(value)


# --- what the document says, in words ---------------------------------------------------------------------

REPORT_TITLE = ("服务类社会救助效能评估报告", "Service-type social assistance: performance report")
DIMENSION_NAMES = {
    "organisation": ("机构", "Organisation"), "contract": ("合同", "Contract"),
    "service_type": ("服务项目", "Service type"), "category": ("服务类别", "Category"), "town": ("镇街", "Town"),
    "recipient_class": ("对象类别", "Recipient class"), "worker": ("服务人员", "Worker"),
    "recipient": ("救助对象", "Recipient"),
    "day": ("日", "Day"), "week": ("周", "Week"), "month": ("月", "Month"), "quarter": ("季度", "Quarter"),
    "year": ("年", "Year"),
}
DIMENSION_OF_FILTER = {f: d for d, f in services.FILTER_OF.items()}
UNIT_NAMES = {"count": "计数 count", "hours": "小时 hours", "units": "单位 units", "rate": "% rate",
              "mean": "分 score (1–5)", "days": "天 days", "fen": "元 ¥ yuan"}
OUTCOME_NAMES = {"delivered": "已完成 delivered", "missed": "漏服务 missed", "cancelled": "已取消 cancelled"}
CODED = frozenset({"service_type", "category"})  # shown with their code: 'LC01 助餐'
DEFINITIONS_NOTE = "指标定义见末页 / definitions on the last pages"
# The by-… parts of every downloaded report (services.SHEET_GROUPINGS): their sheet and table titles.
PART_TITLES = {"organisation": "按机构 By organisation", "service_type": "按服务项目 By service type",
               "town": "按镇街 By town"}


def definitions_of(document: dict) -> list[dict]:
    """The definitions the document was made with (a frozen report keeps its own), in report order."""
    return document.get("definitions") or services.definitions()


def definitions_by_code(document: dict) -> dict[str, dict]:
    """Figure code -> its definition (code, unit, names, texts), in report order."""
    return {d["code"]: d for d in definitions_of(document)}


def is_extra_grouping(group_by: list[str]) -> bool:
    """Whether the grouping asked for is not one of the by-organisation, service type or town parts."""
    return bool(group_by) and group_by not in [[name] for name in PART_TITLES]


def labels_of(document: dict) -> dict[str, dict]:
    """Dimension -> key (as text) -> {"zh", "en"} names, from the report and its by-… parts."""
    merged: dict[str, dict] = {}
    for part in (document["report"], *document.get("by", {}).values()):
        for dimension, names in part.get("labels", {}).items():
            merged.setdefault(dimension, {}).update(names)
    return merged


def name_of(labels: dict, dimension: str, value, lang: str = "zh") -> str:
    """The name of a group's key part (a period label or an unknown key as it is)."""
    if value is None:
        return "—"
    return no_formula(labels.get(dimension, {}).get(str(value), {}).get(lang, str(value)))


def key_in_words(labels: dict, key: dict) -> str:
    """A group's key as one line: '镇江新区颐心助餐服务社 · LC01 助餐 · 2026-10'."""
    return " · ".join(f"{value} {name_of(labels, name, value)}" if name in CODED else name_of(labels, name, value)
                      for name, value in key.items())


def period_in_words(document: dict) -> str:
    """'2026-10-01 至 2026-10-31'."""
    query = document["query"]
    return f"{query['from']} 至 {query['to']}"


def scope_in_words(document: dict) -> str:
    """The filters by name ('机构 Organisation: 颐养…; 镇街 Town: 大港街道'), or the whole district."""
    labels = labels_of(document)
    parts = []
    for name, value in document["query"].get("filters", {}).items():
        dimension = DIMENSION_OF_FILTER.get(name, name)
        zh, en = DIMENSION_NAMES.get(dimension, (name, name))
        parts.append(f"{zh} {en}: {name_of(labels, dimension, value)}")
    return "; ".join(parts) if parts else "全区 District-wide"


def grouping_in_words(group_by: list[str]) -> str:
    """'按 机构、月 by organisation, month', or no grouping."""
    if not group_by:
        return "不分组 None (totals only)"
    return (f"按{'、'.join(DIMENSION_NAMES[n][0] for n in group_by)} by "
            f"{', '.join(DIMENSION_NAMES[n][1].lower() for n in group_by)}")


def local_time(moment: str | None, fmt: str = "%Y-%m-%d %H:%M", tz: tzinfo | None = None) -> str | None:
    """An ISO timestamp in the district's time zone (`tz`, looked up when not given), None for none."""
    if not moment:
        return None
    return datetime.fromisoformat(moment).astimezone(tz or district_tz()).strftime(fmt)


def cover_facts(document: dict) -> list[tuple[str, str]]:
    """What a report is about and where it came from, as (label, value) lines for a cover or summary."""
    facts = [("报告期 Period", period_in_words(document)), ("范围 Scope", scope_in_words(document)),
             ("分组 Grouping", grouping_in_words(document["report"].get("group_by", []))),
             ("生成时间 Generated at", f"{local_time(document.get('generated_at'))} ({district_tz().key})"),
             ("程序版本 Code version", document.get("code_version", "")),
             ("服务记录 Records", f"{record_count(document):,}")]
    frozen = document.get("frozen")
    if frozen:
        facts += [("冻结报告 Frozen report", f"#{frozen['id']}"), ("内容哈希 Content hash (SHA-256)", frozen["content_hash"]),
                  ("冻结时间 Frozen at", local_time(frozen.get("generated_at")) or ""),
                  ("冻结人 Frozen by", frozen.get("generated_by") or "")]
    return facts


def shown(value, unit: str) -> str:
    """A figure as printed: rates as percent, fen as yuan, '—' where there is none."""
    if value is None:
        return "—"
    if unit == "rate":
        return f"{value:.1%}"
    if unit == "fen":
        return f"¥{value / 100:,.2f}"
    if unit == "count":
        return f"{value:,}"
    if unit == "mean":
        return f"{value:.2f}"
    if unit == "days":
        return f"{value:,.1f}"
    return f"{value:,.2f}"


# --- XLSX ------------------------------------------------------------------------------------------------

NUMBER_FORMATS = {"count": "#,##0", "hours": "#,##0.00", "units": "#,##0.00", "rate": "0.0%", "mean": "0.00",
                  "days": "0.0", "fen": '"¥"#,##0.00'}
YUAN = NUMBER_FORMATS["fen"]  # money is stored in fen and shown in yuan
BOLD = Font(bold=True)
TITLE_FONT = Font(bold=True, size=14)
WRAP = Alignment(wrap_text=True, vertical="top")


def render_xlsx(document: dict) -> bytes:
    """Summary, by organisation, by service type, by town (and the grouping asked for), every record and the
    definitions, one sheet each; written in openpyxl's streaming write-only mode."""
    workbook = Workbook(write_only=True)
    labels, definitions = labels_of(document), definitions_by_code(document)
    _summary_sheet(workbook, document)
    for name, title in PART_TITLES.items():
        if name in document.get("by", {}):
            _group_sheet(workbook, title, document["by"][name], labels, definitions)
    if is_extra_grouping(document["report"]["group_by"]):
        _group_sheet(workbook, "按所选分组 As requested", document["report"], labels, definitions)
    _records_sheet(workbook, document.get("records", []), labels)
    _definitions_sheet(workbook, definitions_of(document))
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def _styled(sheet, value, *, font: Font | None = None, number_format: str | None = None,
            alignment: Alignment | None = None) -> WriteOnlyCell:
    """A write-only cell with a font, number format or alignment."""
    cell = WriteOnlyCell(sheet, value=value)
    if font is not None:
        cell.font = font
    if number_format is not None:
        cell.number_format = number_format
    if alignment is not None:
        cell.alignment = alignment
    return cell


def _header(sheet, names: list[str]) -> list[WriteOnlyCell]:
    """A bold header row."""
    return [_styled(sheet, name, font=BOLD, alignment=WRAP) for name in names]


def _widths(sheet, widths: list[float]) -> None:
    """Column widths (set before the first row is written)."""
    for index, width in enumerate(widths, 1):
        sheet.column_dimensions[get_column_letter(index)].width = width


class _Formatted:
    """Write-only cells with a number format, made fast: each format's style is built once, then copied (setting
    a format on a cell looks the style up again, which dominates a sheet of many thousand rows)."""

    def __init__(self, sheet):
        self.sheet = sheet
        self.templates: dict[str, WriteOnlyCell] = {}

    def __call__(self, value, number_format: str) -> WriteOnlyCell | None:
        """The value in a cell with the format (None for no value: an empty cell)."""
        if value is None:
            return None
        template = self.templates.get(number_format)
        if template is None:
            template = self.templates[number_format] = _styled(self.sheet, None, number_format=number_format)
        cell = WriteOnlyCell(self.sheet, value=value)
        cell._style = copy(template._style)
        return cell


def _figure_cell(formatted: _Formatted, value, unit: str, empty=None):
    """A figure as a number with its unit's format (fen as yuan), or `empty` where there is none."""
    if value is None:
        return empty
    return formatted(value / 100 if unit == "fen" else value, NUMBER_FORMATS.get(unit, "General"))


def _figure_header(definition: dict) -> tuple[str, str]:
    """A figure's column headers (Chinese, English with its code); money says it is in yuan."""
    yuan = definition["unit"] == "fen"
    return (definition["name_zh"] + ("（元）" if yuan else ""),
            f"{definition['name_en']}{', ¥' if yuan else ''} ({definition['code']})")


def _summary_sheet(workbook: Workbook, document: dict) -> None:
    """Title, what the report covers and where it came from, the total figures and the satisfaction scores."""
    sheet = workbook.create_sheet("摘要 Summary")
    formatted = _Formatted(sheet)
    _widths(sheet, [34, 30, 40, 18, 16])
    sheet.append([_styled(sheet, f"{REPORT_TITLE[0]} {REPORT_TITLE[1]}", font=TITLE_FONT)])
    if document.get("title"):
        sheet.append([_styled(sheet, document["title"], font=BOLD)])
    sheet.append([])
    for label, value in cover_facts(document):
        sheet.append([_styled(sheet, label, font=BOLD), value])
    sheet.append([])
    sheet.append(_header(sheet, ["指标代码 Code", "指标 Indicator", "Indicator", "数值 Value", "单位 Unit"]))
    total = document["report"]["total"]
    for definition in definitions_of(document):
        code, unit = definition["code"], definition["unit"]
        sheet.append([code, definition["name_zh"], definition["name_en"],
                      _figure_cell(formatted, total.get(code), unit, "—"), UNIT_NAMES.get(unit, unit)])
    sheet.append([])
    sheet.append(_header(sheet, ["满意度分布 Satisfaction distribution", "评分 Score", None, "人次 Person-times"]))
    for score, count in (total.get("satisfaction_distribution") or {}).items():
        sheet.append([None, f"{score} 分", None, _figure_cell(formatted, count, "count")])
    sheet.append([])
    sheet.append(["指标定义见“指标定义 Definitions”工作表 / definitions: see the Definitions sheet"])


def _key_columns(group_by: list[str]) -> tuple[list[str], list[str], list[float]]:
    """The key's header cells (Chinese row, English row) and widths: id, Chinese and English name of each
    dimension, the label of a period."""
    zh, en, widths = [], [], []
    for name in group_by:
        name_zh, name_en = DIMENSION_NAMES[name]
        if name in PERIODS:
            zh, en, widths = zh + [name_zh], en + [name_en], widths + [12]
        else:
            zh += [f"{name_zh}编号", name_zh, f"{name_zh}（英文）"]
            en += [f"{name_en} ID", name_en, f"{name_en} (English)"]
            widths += [10, 28, 28]
    return zh, en, widths


def _key_values(key: dict, labels: dict) -> list:
    """A group's key: id, Chinese and English name of each dimension, the label of a period."""
    values = []
    for name, value in key.items():
        if name in PERIODS:
            values.append(value)
        else:
            values += [value, name_of(labels, name, value), name_of(labels, name, value, "en")]
    return values


def _group_sheet(workbook: Workbook, title: str, report: dict, labels: dict, definitions: dict[str, dict]) -> None:
    """One row per group and a total row, one column per figure; the key and the headers stay in view."""
    sheet = workbook.create_sheet(title)
    zh, en, widths = _key_columns(report["group_by"])
    _widths(sheet, widths + [14] * len(definitions))
    sheet.freeze_panes = f"{get_column_letter(len(widths) + 1)}3"
    headers = [_figure_header(d) for d in definitions.values()]
    sheet.append(_header(sheet, zh + [header[0] for header in headers]))
    sheet.append(_header(sheet, en + [header[1] for header in headers]))
    formatted = _Formatted(sheet)
    for group in report["groups"]:
        sheet.append(_key_values(group["key"], labels) + _figure_cells(formatted, group["figures"], definitions))
    sheet.append([_styled(sheet, "合计 Total", font=BOLD)] + [None] * (len(widths) - 1)
                 + _figure_cells(formatted, report["total"], definitions))


def _figure_cells(formatted: _Formatted, figures: dict, definitions: dict[str, dict]) -> list:
    """A group's figures in definition order, formatted by unit."""
    return [_figure_cell(formatted, figures.get(code), d["unit"]) for code, d in definitions.items()]


RECORD_HEADERS = (
    ("服务日期 Date", 12), ("上门服务编号 Visit", 10), ("机构 Organisation", 26), ("合同编号 Contract", 9),
    ("服务项目 Service type", 18), ("镇街 Town", 14), ("对象编号 Recipient", 10), ("对象类别 Class", 12),
    ("服务人员编号 Worker", 10), ("结果 Outcome", 16), ("预计开始 Expected", 8), ("签入 Start", 8),
    ("签出 End", 8), ("时长（小时）Hours", 10), ("数量 Units", 8), ("单价 Price ¥", 10), ("金额 Value ¥", 11),
    ("满意度 Satisfaction", 9), ("标记 Flags", 22), ("持证 Certified", 8), ("提交台账 Received", 17),
    ("路途（分钟）Travel min", 9), ("台账记录编号 Record ids", 20),
)


def _records_sheet(workbook: Workbook, records: list[dict], labels: dict) -> None:
    """Every record behind the report, one row each (ids only: no names or ID numbers of recipients)."""
    sheet = workbook.create_sheet("服务记录 Records")
    _widths(sheet, [width for _, width in RECORD_HEADERS])
    sheet.freeze_panes = "C2"
    sheet.append(_header(sheet, [name for name, _ in RECORD_HEADERS]))
    rows = _RecordRows(sheet, _record_names(records, labels), district_tz())
    for record in records:
        sheet.append(rows.row(record))


def _record_names(records: list[dict], labels: dict) -> dict[tuple[str, object], str]:
    """(dimension, key) -> the name shown in the records sheet, looked up once per key."""
    names = {}
    for record in records:
        for dimension in ("organisation", "service_type", "town"):
            value = record.get(dimension)
            if (dimension, value) not in names:
                name = name_of(labels, dimension, value)
                names[(dimension, value)] = f"{value} {name}" if dimension in CODED else name
    return names


class _RecordRows:
    """Turns records into rows of the records sheet, fast: names looked up once, formats copied, not rebuilt."""

    def __init__(self, sheet, names: dict, tz: tzinfo):
        self.names, self.tz, self.formatted = names, tz, _Formatted(sheet)

    def time(self, moment: str | None, fmt: str = "%H:%M") -> str | None:
        """A timestamp as district time."""
        return local_time(moment, fmt, self.tz)

    def row(self, record: dict) -> list:
        """One record as a row."""
        delivered, names = record["outcome"] == "delivered", self.names
        flags = [label for flag, label in (("exception", "异常 exception"), ("manual", "人工录入或修改 manual or edited"),
                                           ("corrected", "已更正 corrected")) if record.get(flag)]
        return [
            date.fromisoformat(record["service_date"]), record["visit_id"],
            names[("organisation", record["organisation"])], record.get("contract"),
            names[("service_type", record["service_type"])], names[("town", record["town"])], record["recipient"],
            record["recipient_class"], record.get("worker"), OUTCOME_NAMES.get(record["outcome"], record["outcome"]),
            self.time(record.get("expected_start")), self.time(record.get("started_at")),
            self.time(record.get("ended_at")),
            self.formatted(record["service_hours"] if delivered else None, NUMBER_FORMATS["hours"]),
            record.get("delivered_units") if delivered else None,
            self.formatted(record["unit_price_fen"] / 100 if record.get("unit_price_fen") else None, YUAN),
            self.formatted(record["delivered_value_fen"] / 100 if delivered else None, YUAN),
            record.get("satisfaction"), "; ".join(flags) or None, "是 yes" if record.get("certified") else None,
            self.time(record.get("received_at"), "%Y-%m-%d %H:%M"), record.get("travel_min"),
            " ".join(str(i) for i in record.get("record_ids", [])) or None,
        ]


def _definitions_sheet(workbook: Workbook, definitions: list[dict]) -> None:
    """Every figure's definition, word for word as the reports print it."""
    sheet = workbook.create_sheet("指标定义 Definitions")
    columns = [("指标代码 Code", "code", 24), ("类别 Group", "group", 11), ("单位 Unit", "unit", 9),
               ("名称 Name", "name_zh", 18), ("Name", "name_en", 26), ("定义 Definition", "text_zh", 60),
               ("Definition", "text_en", 70)]
    _widths(sheet, [width for _, _, width in columns])
    sheet.freeze_panes = "B2"
    sheet.append(_header(sheet, [title for title, _, _ in columns]))
    for definition in definitions:
        sheet.append([_styled(sheet, definition[field], alignment=WRAP) for _, field, _ in columns])


# --- PDF -------------------------------------------------------------------------------------------------

PDF_TEMPLATE = "evaluation/report_pdf.html"
TABLE_FIGURES = ("person_times", "recipients", "service_hours", "delivered_value_fen", "satisfaction_mean",
                 "on_time_rate", "missed", "missed_rate", "exception_rate", "manual_or_edited_rate",
                 "contract_completion", "budget_execution")
PDF_MAX_GROUPS = 300  # a grouping with more groups than this is left to the XLSX
MAX_BARS = 25  # bars in one chart: a chart fits on a page


@cache
def _templates() -> Environment:
    """The Jinja environment of the report templates (package files, autoescaped)."""
    return Environment(loader=PackageLoader("servicehub.evaluation", "templates"),
                       autoescape=select_autoescape(["html"]), trim_blocks=True, lstrip_blocks=True)


def render_pdf(document: dict) -> bytes:
    """A4 PDF: cover, summary figures, charts, tables by organisation, service type and town, definitions;
    Chinese fonts embedded. Records are counted, not listed (they are in the XLSX)."""
    from weasyprint import HTML  # heavy: imported when a PDF is asked for

    html = _templates().get_template(PDF_TEMPLATE).render(**pdf_context(document))
    return HTML(string=html).write_pdf()


def pdf_context(document: dict) -> dict:
    """Everything the PDF template prints, already in words and formatted."""
    labels, definitions = labels_of(document), definitions_by_code(document)
    report = document["report"]
    tables = [_table(title, document["by"][name], labels, definitions)
              for name, title in PART_TITLES.items() if name in document.get("by", {})]
    if is_extra_grouping(report["group_by"]):
        tables.append(_table(f"按所选分组 As requested: {grouping_in_words(report['group_by'])}", report, labels,
                             definitions))
    return {"title": REPORT_TITLE, "document_title": document.get("title") or "",
            "running": f"{document.get('title') or REPORT_TITLE[0]} · {period_in_words(document)}",
            "cover": cover_facts(document), "frozen": document.get("frozen"),
            "summary": _summary_rows(document), "charts": pdf_charts(document, labels),
            "tables": tables, "definitions": definitions_of(document), "definitions_note": DEFINITIONS_NOTE}


def _summary_rows(document: dict) -> list[dict]:
    """The total figures, one row each, formatted."""
    total = document["report"]["total"]
    return [{**d, "value": shown(total.get(d["code"]), d["unit"]), "unit_name": UNIT_NAMES.get(d["unit"], d["unit"])}
            for d in definitions_of(document)]


def _table_figures(report: dict, definitions: dict[str, dict]) -> list[str]:
    """The main figures a group table shows: those some group has (the total's, when there are no groups)."""
    rows = [g["figures"] for g in report["groups"]] or [report["total"]]
    return [c for c in TABLE_FIGURES if c in definitions and any(row.get(c) is not None for row in rows)]


def _table(title: str, report: dict, labels: dict, definitions: dict[str, dict]) -> dict:
    """A group table's title, headers, rows of the main figures and total row, formatted."""
    codes = _table_figures(report, definitions)
    units = [definitions[c]["unit"] for c in codes]

    def cells(figures: dict) -> list[str]:
        return [shown(figures.get(c), unit) for c, unit in zip(codes, units, strict=True)]

    groups = report["groups"]
    return {"title": title, "key": " / ".join(DIMENSION_NAMES[name][0] for name in report["group_by"]),
            "figures": [definitions[c] for c in codes],
            "rows": [[key_in_words(labels, g["key"])] + cells(g["figures"]) for g in groups[:PDF_MAX_GROUPS]],
            "total": ["合计 Total"] + cells(report["total"]), "left_out": max(0, len(groups) - PDF_MAX_GROUPS)}


def _bars(title: str, report: dict, labels: dict, code: str, value_format: str = "{:,.0f}", scale: float = 1,
          lowest_first: bool = False) -> str:
    """A bar chart of one figure of a one-dimension report's groups, largest first (or lowest, where low is
    bad), at most MAX_BARS of them (the title then says so)."""
    dimension = report["group_by"][0]
    items = [(name_of(labels, dimension, g["key"][dimension]), g["figures"].get(code)) for g in report["groups"]]
    items = [(name, None if value is None else value / scale) for name, value in items]
    items.sort(key=lambda item: (item[1] is None, item[1] or 0) if lowest_first else -(item[1] or 0))
    if len(items) > MAX_BARS:
        title += f"（{len(items)} 个中{'最低' if lowest_first else '最高'}的 {MAX_BARS} 个 / " \
                 f"{'lowest' if lowest_first else 'top'} {MAX_BARS} of {len(items)}）"
    return charts.bar_chart(title, items[:MAX_BARS], value_format)


def pdf_charts(document: dict, labels: dict) -> list[Markup]:
    """The report's charts as SVG, drawn from its figures."""
    by = document.get("by", {})
    drawn = []
    if "organisation" in by:
        drawn += [_bars("服务人次（按机构） Person-times by organisation", by["organisation"], labels, "person_times"),
                  _bars("交付金额（按机构，元） Delivered value by organisation (¥)", by["organisation"], labels,
                        "delivered_value_fen", "¥{:,.0f}", scale=100)]
    if "service_type" in by:
        drawn.append(_bars("服务人次（按服务项目） Person-times by service type", by["service_type"], labels,
                           "person_times"))
    distribution = document["report"]["total"].get("satisfaction_distribution") or {}
    drawn.append(charts.distribution_chart("满意度分布 Satisfaction (person-times per score)",
                                           {f"{score} 分": count for score, count in distribution.items()}, 400))
    if "organisation" in by:
        drawn += [_bars("准时率（按机构） On-time rate by organisation", by["organisation"], labels, "on_time_rate",
                        "{:.1%}", lowest_first=True),
                  _bars("漏服务率（按机构） Missed rate by organisation", by["organisation"], labels, "missed_rate",
                        "{:.1%}")]
    drawn += _period_chart(document["report"])
    return [Markup(svg) for svg in drawn]  # the chart functions escape every text they draw


def _period_chart(report: dict) -> list[str]:
    """Person-times per period, when the report is split by a period only."""
    if len(report["group_by"]) != 1 or report["group_by"][0] not in PERIODS:
        return []
    period = report["group_by"][0]
    name_zh, name_en = DIMENSION_NAMES[period]
    return [charts.column_chart(f"服务人次（按{name_zh}） Person-times by {name_en.lower()}",
                                [(g["key"][period], g["figures"]["person_times"]) for g in report["groups"]])]


# --- monthly settlements ------------------------------------------------------------------------------------------
# One document (`services.settlement_document`) rendered three ways; money is stored in fen and printed in yuan.
# Recipients and workers appear by id only (their names are on the page, not in files that travel).

SETTLEMENT_TITLE = ("服务类社会救助服务费用结算单", "Service-type social assistance: monthly settlement")
BILLING_NAMES = {"visit": "按次 per visit", "minute": "按核验分钟 per verified minute"}
UNIT_WORDS = {"visit": "次", "hour": "小时", "meal": "餐", "day": "天"}
FUNDING_NAMES = {"government": "政府购买 Government", "charity": "慈善资金 Charity",
                 "organisation": "组织自筹 Organisation's own", "other": "其他 Other"}
EXCEPTION_STATUS_NAMES = {"open": "待说明 to explain", "resolved": "待审核 to decide", "rejected": "已驳回 rejected",
                          "approved": "已批准 approved", "waived": "已豁免 waived", "cleared": "已消除 cleared"}
CHANGE_NAMES = {"verified": "已核验人次 Verified", "units": "计费数量 Billable units", "amount_fen": "应付金额 Amount",
                "unverified": "未核验人次 Unverified", "unverified_fen": "待核验金额 Pending amount",
                "total_fen": "合计应付 Total"}
MONEY_CHANGES = frozenset({"amount_fen", "unverified_fen", "total_fen"})
PDF_MAX_UNSETTLED = 400  # visits not paid yet listed in the PDF (the XLSX and CSV list them all)
SETTLEMENT_LINE_HEADERS = (
    "服务项目 Service type", "名称 Name", "计量单位 Unit", "结算方式 Billing", "取整步长（分钟） Step (min)",
    "最低计费比例 Minimum share", "单价（元） Unit price (¥)", "交付人次 Delivered", "已核验 Verified",
    "未核验 Unverified", "计费数量 Billable units", "应付金额（元） Amount (¥)", "待核验金额（元） Pending (¥)")
FUNDING_HEADERS = ("资金来源 Funding source", "出资方 Funder", "比例 Share", "应付金额（元） Amount (¥)")
UNSETTLED_HEADERS = ("服务日期 Date", "上门服务编号 Visit", "服务项目 Service type", "对象编号 Recipient",
                     "服务人员编号 Worker", "计费数量 Units", "金额（元） Amount (¥)", "未决异常 Exceptions standing")

_DIGITS = "零壹贰叁肆伍陆柒捌玖"
_PLACES = ("仟", "佰", "拾", "")
_GROUPS = ("", "万", "亿", "万亿")


def _four_digits(number: int) -> str:
    """1..9999 in capital numerals, with 零 for the zeros inside it (1010: 壹仟零壹拾)."""
    text, zero = "", False
    for digit, place in zip(f"{number:04d}", _PLACES, strict=True):
        if digit == "0":
            zero = bool(text)
        else:
            text += ("零" if zero else "") + _DIGITS[int(digit)] + place
            zero = False
    return text


def _capital_integer(number: int) -> str:
    """A whole number in capital numerals (100010: 壹拾万零壹拾)."""
    groups = []
    while number:
        number, group = divmod(number, 10000)
        groups.append(group)
    text, gap = "", False
    for index in range(len(groups) - 1, -1, -1):
        group = groups[index]
        if group == 0:
            gap = bool(text)
            continue
        if text and (gap or group < 1000):
            text += "零"
        text += _four_digits(group) + _GROUPS[index]
        gap = False
    return text


def fen_in_words(fen: int) -> str:
    """An amount in fen as a cheque writes it in capitals (中文大写金额): 123456 -> 壹仟贰佰叁拾肆元伍角陆分,
    1005 -> 壹拾元零伍分, 100000 -> 壹仟元整."""
    if fen < 0:
        return "负" + fen_in_words(-fen)
    if fen == 0:
        return "零元整"
    whole, cents = divmod(fen, 100)
    jiao, fen_digit = divmod(cents, 10)
    text = _capital_integer(whole) + "元" if whole else ""
    if jiao:
        text += _DIGITS[jiao] + "角"
    elif fen_digit and whole:
        text += "零"
    return text + (_DIGITS[fen_digit] + "分" if fen_digit else "整")


def yuan_text(fen: int | None) -> str:
    """Fen as plain yuan for a CSV cell: '1234.56' (a number a spreadsheet reads; '' for none)."""
    return "" if fen is None else yuan(fen).replace("¥", "").replace(",", "")


def _units_text(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}".rstrip("0").rstrip(".")


def _is_money_change(change: dict) -> bool:
    return change["figure"] in MONEY_CHANGES and change.get("visit_id") is None


VISIT_PAID = "是否计入应付 Paid"


def _change_name(change: dict) -> str:
    """What a difference is of, in words (a visit's: whether it is paid)."""
    return VISIT_PAID if change.get("visit_id") is not None else CHANGE_NAMES.get(change["figure"], change["figure"])


def _change_value(change: dict, value):
    """A difference's value as it is printed: whether a visit is paid in words, figures as they are."""
    if isinstance(value, bool):
        return "计入 paid" if value else "不计入 not paid"
    return value


def export_settlement(principal: Principal, contract_id: int, month: str, fmt: str) -> tuple[bytes, str]:
    """A contract's monthly settlement the caller may see, as a file: (content, file name without extension)."""
    document = services.settlement_document(principal, contract_id, month)
    renderer = {"csv": render_settlement_csv, "xlsx": render_settlement_xlsx, "pdf": render_settlement_pdf}[fmt]
    content = renderer(document)
    record_read("export_downloaded", "contracts", contract_id, export="settlement", format=fmt, month=month,
                contract=document["contract_code"])
    return content, f"servicehub-settlement-{document['contract_code']}-{month}"


def service_name(document: dict, code: str) -> str:
    """'LC02 助洁'."""
    names = document.get("names", {}).get("service_types", {}).get(code) or {}
    return f"{code} {names.get('zh', '')}".strip()


def exceptions_in_words(exceptions: list[dict]) -> str:
    """A visit's standing exceptions: '服务时长过短（待说明）; 人工录入（已驳回）'."""
    from servicehub.visits.exceptions import NAMES, Code

    def name(code: str) -> str:
        try:
            return NAMES[Code(code)][0]
        except ValueError:
            return code

    return "; ".join(f"{name(e['code'])}（{EXCEPTION_STATUS_NAMES.get(e['status'], e['status']).split()[0]}）"
                     for e in exceptions)


def terms_in_words(line: dict) -> str:
    """'按核验分钟，15分钟取整，不足计划时长50%需审批' / '按次，不足计划时长50%需审批'."""
    share = f"不足计划时长{line['min_share']:.0%}需审批"
    if line["billing"] == "minute":
        return f"按核验分钟，{line['step_min']}分钟取整（四舍五入），{share}"
    return f"按次，{share}"


def status_in_words(document: dict) -> str:
    """Frozen (when, by whom, with how many exceptions undecided) or live (as of when the file was made)."""
    if document["frozen"]:
        at = document["frozen_at"]
        at = at.isoformat() if isinstance(at, datetime) else at
        undecided = document.get("frozen_open_exceptions")
        return (f"已冻结 Frozen {local_time(at)} · {document.get('frozen_by') or ''}"
                + (f" · 冻结时未决异常 {undecided} 项 undecided then" if undecided else ""))
    return f"实时（未冻结） Live, not frozen · {local_time(document.get('generated_at'))}"


def settlement_facts(document: dict) -> list[tuple[str, str]]:
    """What the settlement is of and where it came from, as (label, value) lines."""
    s = document["settlement"]
    return [("合同 Contract", f"{document['contract_code']} {document['contract_name']}"),
            ("服务机构 Organisation", document.get("organisation_name") or str(document["organisation_id"])),
            ("结算月份 Month", document["month"]),
            ("结算期间 Days", f"{s['from']} 至 {s['to']}"),
            ("状态 Status", status_in_words(document)),
            ("当前未决异常 Exceptions undecided now", str(document["undecided"])),
            ("生成时间 Generated at", f"{local_time(document.get('generated_at'))} ({district_tz().key})"),
            ("程序版本 Code version", document.get("code_version", ""))]


def render_settlement_csv(document: dict) -> bytes:
    """Sections separated by an empty row, each with its own header: what it is, the lines and the total, the
    split by funding source, the visits not paid yet. Money in yuan as plain numbers; UTF-8 with a BOM."""
    s = document["settlement"]
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([f"{SETTLEMENT_TITLE[0]} {SETTLEMENT_TITLE[1]}"])
    for label, value in settlement_facts(document):
        writer.writerow([label, no_formula(value)])
    writer.writerow([])
    writer.writerow(SETTLEMENT_LINE_HEADERS)
    for line in s["lines"]:
        writer.writerow([line["service_type"], no_formula(service_name(document, line["service_type"])),
                         UNIT_WORDS.get(line["unit"], line["unit"]), BILLING_NAMES.get(line["billing"], line["billing"]),
                         line["step_min"] if line["billing"] == "minute" else "", line["min_share"],
                         yuan_text(line["unit_price_fen"]), line["delivered"], line["verified"], line["unverified"],
                         _units_text(line["units"]), yuan_text(line["amount_fen"]), yuan_text(line["unverified_fen"])])
    writer.writerow(["合计 Total", "", "", "", "", "", "", s["delivered"], s["verified"], s["unverified"], "",
                     yuan_text(s["total_fen"]), yuan_text(s["unverified_fen"])])
    writer.writerow(["大写 In words", f"人民币{fen_in_words(s['total_fen'])}"])
    writer.writerow([])
    writer.writerow(FUNDING_HEADERS)
    for part in s["by_funding"]:
        writer.writerow([FUNDING_NAMES.get(part["source"], part["source"]), no_formula(part["funder"]),
                         part["share"], yuan_text(part["amount_fen"])])
    writer.writerow([])
    writer.writerow(UNSETTLED_HEADERS)
    codes = {line["line_id"]: line["service_type"] for line in s["lines"]}
    for row in s["unsettled"]:
        writer.writerow([row["service_date"], row["visit_id"], codes.get(row["line_id"], ""), row["recipient"],
                         row["worker"] or "", _units_text(row.get("units")), yuan_text(row["amount_fen"]),
                         exceptions_in_words(row["exceptions"])])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def render_settlement_xlsx(document: dict) -> bytes:
    """Sheets: the settlement (what it is, lines, total, funding split), the visits not paid yet, and for a
    frozen month what changed since and the corrections waiting for the bureau. Money in yuan."""
    s = document["settlement"]
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("结算 Settlement")
    formatted = _Formatted(sheet)
    _widths(sheet, [24, 24, 10, 22, 12, 12, 14, 11, 11, 11, 13, 16, 16])
    sheet.append([_styled(sheet, f"{SETTLEMENT_TITLE[0]} {SETTLEMENT_TITLE[1]}", font=TITLE_FONT)])
    sheet.append([])
    for label, value in settlement_facts(document):
        sheet.append([_styled(sheet, label, font=BOLD), value])
    sheet.append([])
    sheet.append(_header(sheet, list(SETTLEMENT_LINE_HEADERS)))

    def money(fen):
        return formatted(None if fen is None else fen / 100, YUAN)

    for line in s["lines"]:
        sheet.append([line["service_type"], service_name(document, line["service_type"]),
                      UNIT_WORDS.get(line["unit"], line["unit"]), BILLING_NAMES.get(line["billing"], line["billing"]),
                      line["step_min"] if line["billing"] == "minute" else None,
                      formatted(line["min_share"], "0%"), money(line["unit_price_fen"]),
                      line["delivered"], line["verified"], line["unverified"],
                      formatted(line["units"], "#,##0.0000"), money(line["amount_fen"]), money(line["unverified_fen"])])
    sheet.append([_styled(sheet, "合计 Total", font=BOLD), None, None, None, None, None, None, s["delivered"],
                  s["verified"], s["unverified"], None, money(s["total_fen"]), money(s["unverified_fen"])])
    sheet.append([_styled(sheet, "大写 In words", font=BOLD), f"人民币{fen_in_words(s['total_fen'])}"])
    sheet.append([])
    sheet.append(_header(sheet, list(FUNDING_HEADERS)))
    for part in s["by_funding"]:
        sheet.append([FUNDING_NAMES.get(part["source"], part["source"]), no_formula(part["funder"]),
                      formatted(part["share"], "0.00%"), money(part["amount_fen"])])

    unsettled = workbook.create_sheet("未结算服务 Not paid yet")
    _widths(unsettled, [12, 12, 20, 12, 14, 10, 12, 60])
    unsettled.freeze_panes = "A2"
    unsettled.append(_header(unsettled, list(UNSETTLED_HEADERS)))
    listed = _Formatted(unsettled)
    codes = {line["line_id"]: line["service_type"] for line in s["lines"]}
    for row in s["unsettled"]:
        unsettled.append([date.fromisoformat(row["service_date"]), row["visit_id"],
                          service_name(document, codes.get(row["line_id"], "")), row["recipient"], row["worker"],
                          row.get("units"), listed(row["amount_fen"] / 100, YUAN),
                          exceptions_in_words(row["exceptions"])])

    if document["frozen"]:
        changes = workbook.create_sheet("冻结后变化 Since frozen")
        _widths(changes, [16, 18, 24, 16, 16])
        changes.append(_header(changes, ["服务项目 Service type", "上门服务编号 Visit", "项目 Figure",
                                         "冻结时 As frozen", "现在 Now"]))
        shown = _Formatted(changes)
        for change in document["differences"]:
            money_change = _is_money_change(change)
            frozen, now = (_change_value(change, value) for value in (change["frozen"], change["now"]))
            changes.append([change.get("service_type") or ("合计 Total" if change.get("visit_id") is None else None),
                            change.get("visit_id"), _change_name(change),
                            *((shown(v / 100, YUAN) if money_change and v is not None else v) for v in (frozen, now))])
        changes.append([])
        changes.append(_header(changes, ["待区民政局审核的更正 Corrections waiting for the bureau"]))
        changes.append(_header(changes, ["上门服务编号 Visit", "更正记录编号 Correction", "状态 Status"]))
        for pending in document["pending_corrections"]:
            changes.append([pending["visit_id"], pending["correction_id"],
                            EXCEPTION_STATUS_NAMES.get(pending["status"], pending["status"])])
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


SETTLEMENT_PDF_TEMPLATE = "evaluation/settlement_pdf.html"


def render_settlement_pdf(document: dict) -> bytes:
    """An A4 settlement sheet: what it is of, the lines with their billing terms, the total in figures and in
    capitals, the split by funding source, the visits not paid yet and, for a frozen month, what changed since;
    places to sign. Chinese fonts embedded."""
    from weasyprint import HTML  # heavy: imported when a PDF is asked for

    html = _templates().get_template(SETTLEMENT_PDF_TEMPLATE).render(**settlement_pdf_context(document))
    return HTML(string=html).write_pdf()


def settlement_pdf_context(document: dict) -> dict:
    """Everything the settlement PDF prints, already in words and formatted."""
    s = document["settlement"]
    codes = {line["line_id"]: line["service_type"] for line in s["lines"]}

    def money(fen):
        return shown(fen, "fen")

    lines = [{"service": service_name(document, line["service_type"]), "terms": terms_in_words(line),
              "price": f"{money(line['unit_price_fen'])} / {UNIT_WORDS.get(line['unit'], line['unit'])}",
              "delivered": f"{line['delivered']:,}", "verified": f"{line['verified']:,}",
              "unverified": f"{line['unverified']:,}", "units": _units_text(line["units"]),
              "amount": money(line["amount_fen"]), "pending": money(line["unverified_fen"])} for line in s["lines"]]
    unsettled = [{"date": row["service_date"], "visit": row["visit_id"],
                  "service": codes.get(row["line_id"], ""), "recipient": row["recipient"], "worker": row["worker"] or "—",
                  "amount": money(row["amount_fen"]), "exceptions": exceptions_in_words(row["exceptions"])}
                 for row in s["unsettled"][:PDF_MAX_UNSETTLED]]
    differences = []
    for change in document.get("differences") or []:
        what = (service_name(document, change["service_type"]) if change.get("service_type")
                else f"服务 Visit {change['visit_id']}" if change.get("visit_id") else "合计 Total")
        printed = []
        for value in (_change_value(change, change["frozen"]), _change_value(change, change["now"])):
            if value is None or isinstance(value, str):
                printed.append(value or "—")
            elif _is_money_change(change):
                printed.append(money(value))
            else:
                printed.append(_units_text(value))
        differences.append({"what": what, "figure": _change_name(change),
                            "frozen": printed[0], "now": printed[1]})
    title = f"{document['contract_code']} {document['contract_name']} · {document['month']}"
    return {"title": SETTLEMENT_TITLE, "document_title": title, "running": f"{SETTLEMENT_TITLE[0]} · {title}",
            "facts": settlement_facts(document), "frozen": document["frozen"], "lines": lines,
            "total": {"delivered": f"{s['delivered']:,}", "verified": f"{s['verified']:,}",
                      "unverified": f"{s['unverified']:,}", "amount": money(s["total_fen"]),
                      "pending": money(s["unverified_fen"]), "words": f"人民币{fen_in_words(s['total_fen'])}"},
            "funding": [{"source": FUNDING_NAMES.get(p["source"], p["source"]), "funder": p["funder"],
                         "share": f"{p['share']:.2%}", "amount": money(p["amount_fen"])} for p in s["by_funding"]],
            "unsettled": unsettled, "unsettled_count": len(s["unsettled"]),
            "left_out": max(0, len(s["unsettled"]) - PDF_MAX_UNSETTLED),
            "differences": differences, "pending_corrections": document.get("pending_corrections") or [],
            "status_names": EXCEPTION_STATUS_NAMES}
