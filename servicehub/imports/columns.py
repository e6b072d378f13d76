"""What the columns of an import mean, and how a spreadsheet cell becomes an API value. Pure module.

Each kind of import (recipients, needs, workers) has columns named as district managers name them in
their spreadsheets (姓名, 身份证号, 救助类别 …) or, equivalently, by the API's field names (name,
id_number, assistance_class …). A cell is turned into what the API's create schema accepts — codes
for Chinese names (低保 → dibao), ISO dates, lists of weekdays, "10:30-12:30" → a start and an end —
and nothing more: the schema and the registry's services validate the values exactly as they
validate one record sent to the API.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from servicehub.imports.reader import N_, Cell
from servicehub.registry.identifiers import id_number_problem

WEEKDAY_KEYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_CN_DAYS = {"一": 1, "二": 2, "三": 3, "四": 4, "五": 5, "六": 6, "日": 7, "天": 7, "七": 7}
_DAY_GROUPS = {"工作日": [1, 2, 3, 4, 5], "周末": [6, 7], "每天": list(range(1, 8)), "每日": list(range(1, 8))}
_DAY_PREFIX = re.compile(r"^(周|星期|礼拜)")
_RANGE = re.compile(r"\s*(?:-|–|—|~|～|至|到)\s*")
_LIST_SPLIT = re.compile(r"[,，、;；/\s]+")
_ITEM_SPLIT = re.compile(r"[;；,，、\n]+")
_ENTRY_SPLIT = re.compile(r"[;；\n]+")
_TIME = r"\d{1,2}[:：.]\d{2}"
_INTERVAL = re.compile(rf"({_TIME})\s*(?:-|–|—|~|～|至|到)\s*({_TIME})")
_DATE = re.compile(r"^(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?(?:[ T]\d{1,2}:\d{2}(?::\d{2})?)?$")
_SCIENTIFIC = re.compile(r"\d(\.\d+)?E\+?\d+")  # 3.21191E+17: a number Excel wrote into a CSV
_COMPACT_DATE = re.compile(r"^(\d{4})(\d{2})(\d{2})$")
_EXCEL_EPOCH = date(1899, 12, 30)
_GRADES = {"一级": 1, "二级": 2, "三级": 3, "四级": 4, "1级": 1, "2级": 2, "3级": 3, "4级": 4}
_TRUE = {"是", "有", "y", "yes", "true", "1", "√", "✓"}
_FALSE = {"否", "无", "n", "no", "false", "0", "×", "✗"}


def key(text: object) -> str:
    """How headers and names are compared: full-width folded (NFKC), case and spaces ignored, no '*'."""
    folded = unicodedata.normalize("NFKC", str(text)).casefold()
    return re.sub(r"[\s*]+", "", folded)


class CellProblem(ValueError):
    """A cell that cannot be turned into a value; `message` % `params` says why (translatable)."""

    def __init__(self, message: str, **params):
        super().__init__(message % params if params else message)
        self.message = message
        self.params = params


@dataclass(frozen=True)
class Problem:
    """Something wrong with a header or a cell: where (column as written, API field) and why."""

    column: str
    field: str | None
    message: str
    params: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Lookups:
    """Names the cells may use, from the catalogue and the registry (built by the service).

    Every mapping is keyed by `key(name)` — the code, the Chinese and the English name — and gives the
    code (or id) the API takes; `labels` gives the names to suggest when a cell matches nothing.
    """

    assistance_classes: dict[str, str] = field(default_factory=dict)
    subclasses: dict[str, dict[str, str]] = field(default_factory=dict)  # by class code
    service_types: dict[str, str] = field(default_factory=dict)
    qualifications: dict[str, str] = field(default_factory=dict)
    organisations: dict[str, int] = field(default_factory=dict)
    stations: dict[str, int] = field(default_factory=dict)
    labels: dict[str, list[str]] = field(default_factory=dict)


Converter = Callable[[Cell, Lookups, dict], object]


@dataclass(frozen=True)
class Column:
    """One column: the API field(s) it fills, the headers that name it (canonical Chinese first)."""

    field: str
    headers: tuple[str, ...]
    convert: Converter
    fills: tuple[str, ...] = ()  # the payload keys it fills (default: `field`)
    feeds: tuple[str, ...] = ()  # further API fields whose problems point at this column

    @property
    def canonical(self) -> str:
        """The header the sample files use."""
        return self.headers[0]

    @property
    def payload_keys(self) -> tuple[str, ...]:
        """The payload keys this column fills."""
        return self.fills or (self.field,)

    def names(self) -> set[str]:
        """Every header (compared with `key`) that means this column."""
        return {key(h) for h in (*self.headers, self.field)}


@dataclass(frozen=True)
class Kind:
    """A kind of import: its columns and which of them (or which alternatives) must be present."""

    name: str
    columns: tuple[Column, ...]
    required: tuple[tuple[str, ...], ...]

    def column(self, name: str) -> Column:
        """The column for field `name`."""
        return next(c for c in self.columns if c.field == name)


# --- converters -----------------------------------------------------------------------------


def text_of(value: Cell) -> str:
    """A cell as text: numbers without a spurious '.0', dates as ISO, surrounding spaces removed."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == time(0) else value.isoformat(sep=" ")
    if isinstance(value, date | time):
        return value.isoformat()
    return str(value).strip()


def _nfkc(value: Cell) -> str:
    return unicodedata.normalize("NFKC", text_of(value)).strip()


def as_text(value: Cell, _lookups: Lookups, _row: dict) -> str:
    """Plain text."""
    return text_of(value)


def as_phone(value: Cell, _lookups: Lookups, _row: dict) -> str:
    """A phone number: digits and '-', spaces dropped (a number cell loses nothing below 10^15)."""
    return re.sub(r"\s+", "", _nfkc(value))


def as_id_number(value: Cell, _lookups: Lookups, _row: dict) -> str:
    """A resident ID number as text; a number cell has lost its last digits in Excel unless it still checks."""
    text = re.sub(r"\s+", "", _nfkc(value)).upper()
    as_number_cell = isinstance(value, int | float) and not isinstance(value, bool)
    if (as_number_cell and id_number_problem(text) is not None) or _SCIENTIFIC.fullmatch(text):
        raise CellProblem(
            N_("The ID number is stored as a number, so Excel has dropped its last digits. "
               "Format the column as text and enter the numbers again.")
        )
    return text


def as_integer(value: Cell, _lookups: Lookups, _row: dict) -> object:
    """A whole number (text that is not one is left for the schema to refuse)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    text = _nfkc(value)
    return int(float(text)) if re.fullmatch(r"[+-]?\d+(\.0*)?", text) else text


def as_number(value: Cell, _lookups: Lookups, _row: dict) -> object:
    """A decimal number such as a latitude."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    text = _nfkc(value)
    try:
        return float(text)
    except ValueError:
        return text


def parse_date(value: Cell) -> date:
    """A date from a date cell, an Excel day number, or text like 2027-06-30, 2027/6/30, 2027年6月30日."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool) and 1 <= value < 2958466:
        return _EXCEL_EPOCH + timedelta(days=int(value))
    text = _nfkc(value)
    match = _DATE.match(text) or _COMPACT_DATE.match(text)
    if match:
        try:
            return date(*(int(g) for g in match.groups()))
        except ValueError:
            pass
    raise CellProblem(N_("%(value)s is not a date; write it like 2027-06-30."), value=text_of(value))


def as_date(value: Cell, _lookups: Lookups, _row: dict) -> str:
    """A date, as ISO text."""
    return parse_date(value).isoformat()


def as_boolean(value: Cell, _lookups: Lookups, _row: dict) -> bool:
    """Yes or no: 是/否, Y/N, true/false, 1/0."""
    if isinstance(value, bool):
        return value
    folded = key(text_of(value))
    if folded in _TRUE:
        return True
    if folded in _FALSE:
        return False
    raise CellProblem(N_("Write 是 or 否, not %(value)s."), value=text_of(value))


def as_grade(value: Cell, lookups: Lookups, row: dict) -> object:
    """A disability grade 1–4 (一级 … 四级)."""
    grade = _GRADES.get(key(text_of(value)))
    return grade if grade is not None else as_integer(value, lookups, row)


def choice(options: dict[str, str]) -> Converter:
    """A converter from Chinese labels (or the codes themselves) to codes: {"男": "male", ...}."""
    table = {key(label): code for label, code in options.items()} | {key(code): code for code in options.values()}
    shown = "、".join(dict.fromkeys(options))

    def convert(value: Cell, _lookups: Lookups, _row: dict) -> str:
        """The code for a label."""
        found = table.get(key(text_of(value)))
        if found is None:
            raise CellProblem(N_("Unknown value %(value)s; write one of: %(choices)s."), value=text_of(value), choices=shown)
        return found

    return convert


def lookup(table: str, message: str) -> Converter:
    """A converter through one of the `Lookups` tables (codes or names to codes or ids)."""

    def convert(value: Cell, lookups: Lookups, _row: dict) -> object:
        """The code or id for a name."""
        found = getattr(lookups, table).get(key(text_of(value)))
        if found is None:
            raise CellProblem(message, value=text_of(value), choices=_suggest(lookups, table))
        return found

    return convert


UNKNOWN_CLASS = N_("Unknown assistance class %(value)s; write one of: %(choices)s.")
UNKNOWN_SERVICE_TYPE = N_("Unknown service type %(value)s; write one of: %(choices)s.")
UNKNOWN_QUALIFICATION = N_("Unknown qualification %(value)s; write one of: %(choices)s.")
UNKNOWN_ORGANISATION = N_("Unknown organisation %(value)s (or not yours); write its unified social credit code "
                          "or name, one of: %(choices)s.")
UNKNOWN_STATION = N_("Unknown station %(value)s; write its code, one of: %(choices)s.")


def _suggest(lookups: Lookups, table: str, limit: int = 12) -> str:
    labels = lookups.labels.get(table, [])
    shown = "、".join(labels[:limit])
    return shown + ("…" if len(labels) > limit else "") if shown else "—"


def as_subclass(value: Cell, lookups: Lookups, row: dict) -> str:
    """A subclass of the row's assistance class, by code or name (left as written if the class is unknown)."""
    written = text_of(value)
    class_code = row.get("assistance_class")
    options = lookups.subclasses.get(class_code) if isinstance(class_code, str) else None
    if options is None:
        return written
    found = options.get(key(written))
    if found is None:
        labels = lookups.labels.get(f"subclasses:{class_code}", [])
        raise CellProblem(
            N_("%(value)s is not a subclass of this assistance class; write one of: %(choices)s."),
            value=written, choices="、".join(labels) or "—",
        )
    return found


def parse_days(text: str) -> list[int]:
    """ISO weekdays from '1,3,5', '周一,周三', '周一至周五', '一三五', '工作日', 'mon,wed'."""
    days: list[int] = []
    for token in _LIST_SPLIT.split(unicodedata.normalize("NFKC", text).strip()):
        if not token:
            continue
        if token in _DAY_GROUPS:
            days.extend(_DAY_GROUPS[token])
            continue
        parts = _RANGE.split(token)
        if len(parts) == 2:
            first, last = _one_day(parts[0]), _one_day(parts[1])
            if first > last:
                raise CellProblem(N_("The day range %(value)s runs backwards."), value=token)
            days.extend(range(first, last + 1))
            continue
        if len(parts) > 2:
            raise CellProblem(N_("Unknown day %(value)s; write days like 1,3,5 or 周一,周三."), value=token)
        bare = _DAY_PREFIX.sub("", token)
        if len(bare) > 1 and all(ch in _CN_DAYS for ch in bare):  # 周一三五
            days.extend(_CN_DAYS[ch] for ch in bare)
        else:
            days.append(_one_day(token))
    return days


def _one_day(token: str) -> int:
    bare = _DAY_PREFIX.sub("", token.strip()).casefold()
    if bare in _CN_DAYS:
        return _CN_DAYS[bare]
    if bare.isdigit() and 1 <= int(bare) <= 7:
        return int(bare)
    if len(bare) >= 3 and bare[:3] in WEEKDAY_KEYS:
        return WEEKDAY_KEYS.index(bare[:3]) + 1
    raise CellProblem(N_("Unknown day %(value)s; write days like 1,3,5 or 周一,周三."), value=token)


def as_days(value: Cell, _lookups: Lookups, _row: dict) -> list[int]:
    """Preferred weekdays."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return [_one_day(text_of(value))]
    return parse_days(text_of(value))


def parse_time(value: Cell) -> str:
    """A local time as HH:MM from a time cell, a fraction of a day, or text like 9:00, 09:30, 9点."""
    if isinstance(value, datetime):
        value = value.time()
    if isinstance(value, time):
        return value.strftime("%H:%M")
    if isinstance(value, float) and 0 <= value < 1:
        minutes = round(value * 24 * 60)
        return f"{minutes // 60:02d}:{minutes % 60:02d}"
    text = _nfkc(value)
    match = re.fullmatch(r"(\d{1,2})[:.](\d{2})(?::\d{2})?|(\d{1,2})(?:点|时)(?:(\d{1,2})分?|半)?", text)
    if match:
        hour = int(match.group(1) or match.group(3))
        minute = int(match.group(2) or match.group(4) or (30 if text.endswith("半") else 0))
        if hour < 24 and minute < 60:
            return f"{hour:02d}:{minute:02d}"
    raise CellProblem(N_("%(value)s is not a time; write it like 09:30."), value=text_of(value))


def as_time(value: Cell, _lookups: Lookups, _row: dict) -> str:
    """A local time, HH:MM."""
    return parse_time(value)


def as_window(value: Cell, _lookups: Lookups, _row: dict) -> tuple[str, str]:
    """A time window '10:30-12:30' (also 10:30～12:30, 10:30至12:30) as (start, end)."""
    text = _nfkc(value)
    parts = _RANGE.split(text)
    if len(parts) != 2:
        raise CellProblem(N_("Write the time window like 10:30-12:30, not %(value)s."), value=text)
    return parse_time(parts[0]), parse_time(parts[1])


def as_text_list(value: Cell, _lookups: Lookups, _row: dict) -> list[str]:
    """A list written as 'a,b' (also ，、;/)."""
    return [part for part in _LIST_SPLIT.split(_nfkc(value)) if part]


def as_qualifications(value: Cell, lookups: Lookups, row: dict) -> list[dict]:
    """'rehab_therapist:2027-06-30;counsellor' (names or codes; after ':' an expiry date and/or certificate no.)."""
    items = []
    for entry in _ITEM_SPLIT.split(text_of(value)):
        if not entry.strip():
            continue
        name, *details = re.split(r"[:：]", entry.strip())
        item: dict = {"code": lookup("qualifications", UNKNOWN_QUALIFICATION)(name.strip(), lookups, row)}
        for detail in (d.strip() for d in details if d.strip()):
            try:
                item["expires_on"] = parse_date(detail).isoformat()
            except CellProblem:
                item["certificate_no"] = detail
        items.append(item)
    return items


def as_availability(value: Cell, _lookups: Lookups, _row: dict) -> dict[str, list[list[str]]]:
    """Weekly availability: '周一至周五 08:00-12:00,13:30-17:30; 周六 09:00-12:00'."""
    availability: dict[str, list[list[str]]] = {}
    for entry in _ENTRY_SPLIT.split(unicodedata.normalize("NFKC", text_of(value))):
        if not entry.strip():
            continue
        intervals = list(_INTERVAL.finditer(entry))
        if not intervals:
            raise CellProblem(
                N_("Write availability like 周一至周五 08:00-12:00,13:30-17:30; not %(value)s."), value=entry.strip()
            )
        days = parse_days(entry[: intervals[0].start()].strip().rstrip(":："))
        if not days:
            raise CellProblem(N_("Which days? Write availability like 周一至周五 08:00-12:00."))
        for day in days:
            spans = availability.setdefault(WEEKDAY_KEYS[day - 1], [])
            spans.extend([parse_time(m.group(1)), parse_time(m.group(2))] for m in intervals)
            spans.sort()
    return availability


# --- the kinds ------------------------------------------------------------------------------

GENDERS = {"男": "male", "女": "female"}
CARER_GENDERS = {"不限": "any", "无要求": "any", "男": "male", "女": "female", "同性": "same"}
PERIODS = {"每周": "week", "周": "week", "每月": "month", "月": "month"}
PRIORITIES = {"普通": "normal", "一般": "normal", "紧急": "urgent"}
SOURCES = {"评估": "assessment", "申请": "application", "主动发现": "active_discovery"}
TRAVEL_MODES = {"电动车": "ebike", "电瓶车": "ebike", "步行": "walk", "自行车": "bicycle", "汽车": "car", "开车": "car"}

RECIPIENTS = Kind(
    "recipients",
    (
        Column("name", ("姓名", "救助对象姓名"), as_text),
        Column("id_number", ("身份证号", "身份证号码", "公民身份号码", "证件号码"), as_id_number),
        Column("gender", ("性别",), choice(GENDERS)),
        Column("assistance_class", ("救助类别", "救助类型", "保障类别"), lookup("assistance_classes", UNKNOWN_CLASS)),
        Column("subclass", ("救助子类", "子类"), as_subclass),
        Column("class_valid_until", ("认定有效期至", "有效期至"), as_date),
        Column("disability_grade", ("残疾等级",), as_grade),
        Column("lives_alone", ("是否独居", "独居"), as_boolean),
        Column("area", ("所属社区(编码)", "所属社区编码", "社区编码", "所属区域(编码)", "区域编码"), as_text),
        Column("address", ("住址", "家庭住址", "居住地址", "地址"), as_text),
        Column("lat", ("纬度",), as_number),
        Column("lon", ("经度",), as_number),
        Column("phone", ("联系电话", "电话", "手机号", "手机号码"), as_phone),
        Column("family_carer_name", ("家庭照护人", "照护人", "监护人"), as_text),
        Column("family_carer_phone", ("照护人电话", "家庭照护人电话", "监护人电话"), as_phone),
        Column("carer_gender", ("服务人员性别要求", "护理员性别要求"), choice(CARER_GENDERS)),
        Column("language", ("沟通语言", "语言"), as_text),
        Column("notes", ("备注",), as_text),
    ),
    required=(("name",), ("id_number",), ("assistance_class",), ("area",), ("address",), ("lat",), ("lon",)),
)

NEEDS = Kind(
    "needs",
    (
        Column("id_number", ("身份证号", "身份证号码", "公民身份号码"), as_id_number, feeds=("recipient_id",)),
        Column("recipient_name", ("姓名", "救助对象姓名"), as_text),
        Column("recipient_id", ("救助对象ID", "救助对象编号"), as_integer),
        Column("service_type", ("服务项目编码", "服务项目", "服务类型编码"), lookup("service_types", UNKNOWN_SERVICE_TYPE)),
        Column("quantity", ("数量", "次数", "服务次数", "频次"), as_integer),
        Column("period", ("周期", "计次周期"), choice(PERIODS)),
        Column("preferred_days", ("服务日", "偏好服务日", "星期"), as_days),
        Column("window", ("服务时段", "时段"), as_window, fills=("window_start", "window_end")),
        Column("window_start", ("时段开始", "开始时间"), as_time),
        Column("window_end", ("时段结束", "结束时间"), as_time),
        Column("duration_min", ("每次时长(分钟)", "时长(分钟)", "服务时长(分钟)"), as_integer),
        Column("carers", ("服务人数", "护理人员人数", "上门人数"), as_integer),
        Column("priority", ("优先级", "紧急程度"), choice(PRIORITIES)),
        Column("start_date", ("开始日期", "服务开始日期"), as_date),
        Column("end_date", ("结束日期", "服务结束日期"), as_date),
        Column("source", ("需求来源", "来源"), choice(SOURCES)),
        Column("notes", ("备注",), as_text),
    ),
    required=(("id_number", "recipient_id"), ("service_type",), ("quantity",), ("start_date",)),
)

WORKERS = Kind(
    "workers",
    (
        Column("organisation_id", ("所属组织", "所属组织(统一社会信用代码)", "统一社会信用代码", "服务机构", "社会组织",
                                   "organisation", "credit_code"), lookup("organisations", UNKNOWN_ORGANISATION)),
        Column("employee_no", ("工号", "员工编号"), as_text),
        Column("name", ("姓名",), as_text),
        Column("gender", ("性别",), choice(GENDERS)),
        Column("phone", ("手机号", "手机号码", "联系电话"), as_phone),
        Column("start_station_id", ("出发站点(编码)", "出发站点", "所属站点", "start_station"), lookup("stations", UNKNOWN_STATION)),
        Column("start_lat", ("出发点纬度", "纬度"), as_number),
        Column("start_lon", ("出发点经度", "经度"), as_number),
        Column("travel_mode", ("出行方式", "交通方式"), choice(TRAVEL_MODES)),
        Column("availability", ("可服务时间", "工作时间"), as_availability),
        Column("max_minutes_per_day", ("每日最长工时(分钟)", "每日工时上限(分钟)"), as_integer),
        Column("max_visits_per_day", ("每日最多服务次数", "每日服务次数上限"), as_integer),
        Column("languages", ("语言", "沟通语言"), as_text_list),
        Column("qualifications", ("资质", "资格证书"), as_qualifications),
    ),
    required=(("employee_no",), ("name",), ("gender",)),
)

KINDS: dict[str, Kind] = {k.name: k for k in (RECIPIENTS, NEEDS, WORKERS)}


# --- mapping a header -----------------------------------------------------------------------


def column_letter(index: int) -> str:
    """A spreadsheet column's letters from its 0-based index: 0 → A, 26 → AA."""
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


class HeaderError(ValueError):
    """The header row cannot be used: required columns missing or a field given twice."""

    def __init__(self, problems: list[Problem]):
        super().__init__("; ".join(p.message % p.params for p in problems))
        self.problems = problems


@dataclass
class ColumnMap:
    """Which column of the file means what; converts a row's cells into an API payload."""

    kind: Kind
    positions: list[tuple[int, Column, str]]  # (index, column, header as written)
    ignored: list[str]

    def header_for(self, field_name: str | None) -> str:
        """The header (as the user wrote it, else the canonical one) of the column behind an API field."""
        if not field_name:
            return ""
        for _, column, written in self.positions:
            if field_name == column.field or field_name in column.payload_keys or field_name in column.feeds:
                return written
        for column in self.kind.columns:
            if field_name == column.field or field_name in column.payload_keys or field_name in column.feeds:
                return column.canonical
        return field_name

    def has(self, field_name: str) -> bool:
        """Whether the file has the column for `field_name`."""
        return any(column.field == field_name for _, column, _ in self.positions)

    def convert(self, cells: tuple[Cell, ...], lookups: Lookups) -> tuple[dict, list[Problem]]:
        """The payload of one row (empty cells left out, so schema defaults apply) and its cell problems."""
        payload: dict = {}
        problems: list[tuple[int, Problem]] = []
        order = {column.field: n for n, column in enumerate(self.kind.columns)}
        # Converted in the kind's order (a subclass after its class); problems reported in the file's order.
        for index, column, written in sorted(self.positions, key=lambda p: order[p[1].field]):
            value = cells[index] if index < len(cells) else None
            if value is None or (isinstance(value, str) and not value.strip()):
                continue
            try:
                converted = column.convert(value, lookups, payload)
            except CellProblem as exc:
                problems.append((index, Problem(written, column.payload_keys[0], exc.message, exc.params)))
                continue
            if len(column.payload_keys) > 1:
                payload.update(zip(column.payload_keys, converted, strict=True))
            else:
                payload[column.field] = converted
        return payload, [problem for _, problem in sorted(problems, key=lambda p: p[0])]


def map_header(kind: Kind, header: list[str], *, check_required: bool = True) -> ColumnMap:
    """Match the header row to the kind's columns; HeaderError if a required column is missing or doubled."""
    by_name = {name: column for column in kind.columns for name in column.names()}
    positions: list[tuple[int, Column, str]] = []
    ignored: list[str] = []
    problems: list[Problem] = []
    taken: dict[str, str] = {}
    for index, written in enumerate(header):
        if not written:
            continue
        column = by_name.get(key(written))
        if column is None:
            ignored.append(written)
            continue
        for payload_key in column.payload_keys:
            if payload_key in taken:
                problems.append(Problem(written, payload_key, N_("Columns %(first)s and %(second)s both give %(field)s."),
                                        {"first": taken[payload_key], "second": written, "field": payload_key}))
            taken[payload_key] = written
        positions.append((index, column, written))
    present = {column.field for _, column, _ in positions}
    for alternatives in kind.required if check_required else ():
        if not present.intersection(alternatives):
            names = " / ".join(f"{kind.column(a).canonical} ({a})" for a in alternatives)
            problems.append(Problem(kind.column(alternatives[0]).canonical, alternatives[0],
                                    N_("The required column %(columns)s is missing."), {"columns": names}))
    if problems:
        raise HeaderError(problems)
    return ColumnMap(kind, positions, ignored)
