"""Key performance indicators of service delivery (效能评估指标). Pure module: plain records in, figures out.

Three kinds of plain record come in, each loaded by `servicehub.evaluation.services`:

- `VisitFact`: one visit of the period that was delivered (it has a delivery record in the ledger, after the
  corrections in force), missed or cancelled;
- `NeedFact`: one line of a need list, with when it was registered and first served;
- `LineFact`: one contracted line (service type, price, quantity) of a contract.

`kpi_report` groups them by any of `DIMENSIONS` (and a period granularity) and computes every figure of
`DEFINITIONS` per group and for the whole. It works on `VisitBlock`s: the visits that share everything a report
splits by (and their need), with what they add summed (`visit_sums` says what one visit adds). `blocks_from_facts`
makes them from visit facts; the database can sum them itself for a large period (`report_from_blocks`). Every figure that sums records can be traced: `in_group` says
which facts a group holds and `contribution` what each one adds. "Late" and "missed" are the alerts'
definitions (`servicehub.visits.alerts`), so a report and the inbox never disagree.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from operator import itemgetter
from typing import NamedTuple

from servicehub.visits.alerts import Grace, arrived_late

DELIVERED = "delivered"
MISSED = "missed"
CANCELLED = "cancelled"
OUTCOMES = (DELIVERED, MISSED, CANCELLED)

# What a report may be grouped by: who, what, where, for whom …
DIMENSIONS = ("organisation", "contract", "service_type", "category", "town", "recipient_class", "worker",
              "recipient")
# … and when.
PERIODS = ("day", "week", "month", "quarter", "year")
# Dimensions a contracted line (and so completion) can be split by; budgets only by the first two.
LINE_DIMENSIONS = frozenset({"organisation", "contract", "service_type", "category"})
BUDGET_DIMENSIONS = frozenset({"organisation", "contract"})
# Dimensions a need can be split by (a need has no worker).
NEED_DIMENSIONS = frozenset({"organisation", "contract", "service_type", "category", "town", "recipient_class",
                             "recipient"})
SUBMITTED_WITHIN = timedelta(hours=24)
CONTINUITY_WORKERS = 2


@dataclass(frozen=True)
class VisitFact:
    """One visit of the period as the ledger has it: delivered (with the delivery in force), missed or
    cancelled."""

    visit_id: int
    organisation: int
    contract: int | None  # the contract in force on the day, if the visit counts against one
    line: int | None
    need: int | None
    service_type: str
    category: str
    town: int
    recipient: int
    recipient_class: str
    worker: int | None
    service_date: date
    outcome: str  # delivered | missed | cancelled
    expected_start: datetime  # the planned start on a published roster, else the opening of the window
    meal: bool = False
    started_at: datetime | None = None  # delivered: the times in force (after approved corrections)
    ended_at: datetime | None = None
    units: float = 0.0  # contract units one delivery of it counts for
    unit_price_fen: int = 0
    satisfaction: int | None = None
    exception: bool = False  # the delivery has EVV exceptions (servicehub.visits.exceptions), whatever their state
    corrected: bool = False  # a correction of the delivery is in force
    manual: bool = False  # one of them says it was entered by someone other than its caregiver, or its times edited
    received_at: datetime | None = None  # when the delivery record reached the ledger
    certified: bool = False  # the worker held a certificate valid on the day
    travel_min: int = 0  # from the previous stop, as planned on the roster
    record_ids: tuple[int, ...] = ()  # the ledger entries behind it


class NeedFact(NamedTuple):  # a named tuple, not a dataclass: tens of thousands are made per report
    """One need (a line of a need list) and the referral that serves it."""

    need_id: int
    recipient: int
    town: int
    recipient_class: str
    service_type: str
    category: str
    period: str  # week | month: how its quantity is counted
    registered: date
    starts: date
    ends: date | None
    organisation: int | None = None
    contract: int | None = None
    first_delivery: date | None = None  # the first delivered visit ever, whenever it was


@dataclass(frozen=True)
class LineFact:
    """One contracted line of a contract, with the contract's period and budget."""

    line_id: int
    contract: int
    organisation: int
    service_type: str
    category: str
    contracted_units: float
    unit_price_fen: int
    contract_start: date
    contract_end: date
    contract_budget_fen: int


@dataclass(frozen=True)
class Definition:
    """What a figure means, word for word as reports print it."""

    code: str
    group: str  # quantity | quality | timeliness | cost
    unit: str  # count | hours | rate | mean | days | fen | units | distribution
    name_zh: str
    name_en: str
    text_zh: str
    text_en: str


def _d(code, group, unit, name_zh, name_en, text_zh, text_en) -> Definition:
    return Definition(code, group, unit, name_zh, name_en, text_zh, text_en)


DEFINITIONS: tuple[Definition, ...] = (
    _d("person_times", "quantity", "count", "服务人次", "Person-times",
       "已核验完成的服务次数：台账中有签出记录（含电子核验六要素）的上门服务，每次计1人次；无签出记录的不计。",
       "Verified completed services: each visit with a delivery record (check-out with the six EVV facts) in the "
       "ledger counts once; a visit without one does not count."),
    _d("recipients", "quantity", "count", "服务人数", "Recipients served",
       "期内至少接受过1人次服务的不同救助对象人数。",
       "Distinct recipients with at least one person-time in the period."),
    _d("service_hours", "quantity", "hours", "服务时长（小时）", "Service hours",
       "各人次签入至签出时长之和（以有效更正后的时间为准），单位小时。",
       "Sum over person-times of check-in to check-out, in hours, as corrected where a correction is in force."),
    _d("delivered_units", "quantity", "units", "交付数量", "Delivered units",
       "各人次按服务项目计量单位折算的数量之和（次、小时、餐、天），只计入当日有效合同。",
       "Sum over person-times of the units one delivery counts for (visit, hour, meal, day), against the contract "
       "in force on the day only."),
    _d("contracted_units", "quantity", "units", "合同数量（按期折算）", "Contracted units (for the period)",
       "合同项目约定数量按期内合同天数占合同总天数的比例折算后之和。",
       "Contracted quantity of each line, prorated by the days of the period inside the contract over the "
       "contract's days."),
    _d("contract_completion", "quantity", "rate", "合同完成率", "Contract completion",
       "交付数量 ÷ 合同数量（按期折算）。",
       "Delivered units divided by contracted units (for the period)."),
    _d("coverage", "quantity", "rate", "需求覆盖率", "Coverage",
       "期内每项有效需求都至少获得1人次服务的对象数 ÷ 期内有有效需求的对象数；按月计的需求只在月及以上的分期中计算，按日分期不计算。",
       "Recipients whose every need in force was served at least once in the period, divided by recipients with "
       "needs in force; monthly needs count only in periods of a month or longer; not computed per day."),
    _d("satisfaction_mean", "quality", "mean", "满意度均值", "Satisfaction (mean)",
       "有满意度评分（1–5分）的人次的评分平均值；分布列出各分值的人次数。",
       "Mean of the 1-5 satisfaction scores given; the distribution counts the person-times at each score."),
    _d("exception_rate", "quality", "rate", "异常率", "Exception rate",
       "有电子核验异常（迟到、早退、时长过短或过长、位置偏离、无对象确认、人工录入、时间被修改、延迟提交、时间重叠等，"
       "无论是否已处理）的人次 ÷ 服务人次。",
       "Person-times with EVV exceptions (late, early or late end, too short or too long, far from the address, no "
       "confirmation, manual entry, edited times, submitted late, overlapping …, whatever their state), divided by "
       "person-times."),
    _d("corrected_rate", "quality", "rate", "更正率", "Corrected-record rate",
       "有生效更正记录的人次 ÷ 服务人次。",
       "Person-times with a correction in force, divided by person-times."),
    _d("manual_or_edited_rate", "quality", "rate", "人工录入或修改率", "Manual or edited share",
       "签入或签出不是由该服务人员本人在现场完成（由机构账号代录，或位置为手工输入的住址坐标），或服务时间经更正修改的人次 ÷ 服务人次。",
       "Person-times whose check-in or check-out was not made by their caregiver at the door (an office account, or "
       "the address's coordinates typed in), or whose times were edited by a correction, divided by person-times."),
    _d("continuity", "quality", "rate", "服务连续性", "Continuity of carer",
       "每位对象由其服务次数最多的1至2名服务人员完成的人次之和 ÷ 服务人次。",
       "Person-times delivered by each recipient's one or two most frequent workers, divided by person-times."),
    _d("certified_share", "quality", "rate", "持证服务占比", "Certified-worker share",
       "由服务当日持有有效资格证书的服务人员完成的人次 ÷ 服务人次。",
       "Person-times delivered by a worker holding a certificate valid on the day, divided by person-times."),
    _d("on_time_rate", "timeliness", "rate", "准时率", "On-time rate",
       "签入时间不晚于预计开始时间（排班计划开始时间，无排班时为时间窗开始）加宽限（助餐5分钟，其他15分钟）的人次 ÷ 服务人次。",
       "Person-times checked in no later than the expected start (the planned start on a published roster, else "
       "the opening of the window) plus the grace period (5 minutes for meals, 15 otherwise), divided by "
       "person-times."),
    _d("late_rate", "timeliness", "rate", "迟到率", "Late rate",
       "签入晚于预计开始时间加宽限的人次 ÷ 服务人次（与迟到提醒同一定义）。",
       "Person-times checked in after the expected start plus the grace period, divided by person-times (the "
       "late alert's definition)."),
    _d("missed", "timeliness", "count", "漏服务次数", "Missed visits",
       "时间窗结束仍未开始、被记为未完成的上门服务次数（含系统自动记录的）。",
       "Visits not started by the end of their window and recorded as missed (by the caregiver or by the system)."),
    _d("missed_rate", "timeliness", "rate", "漏服务率", "Missed rate",
       "漏服务次数 ÷（服务人次 + 漏服务次数）；提前取消的不计。",
       "Missed visits divided by person-times plus missed visits; visits cancelled in advance are left out."),
    _d("days_to_first_visit", "timeliness", "days", "需求响应天数", "Days from need to first visit",
       "首次服务落在期内的需求，从登记需求到首次服务的平均天数。",
       "Mean days from a need's registration to its first person-time, over needs first served in the period."),
    _d("submitted_24h_rate", "timeliness", "rate", "24小时内提交率", "Records submitted within 24 h",
       "签出记录在服务结束后24小时内进入台账的人次 ÷ 服务人次。",
       "Person-times whose delivery record reached the ledger within 24 hours of the service's end, divided by "
       "person-times."),
    _d("delivered_value_fen", "cost", "fen", "交付金额", "Delivered value",
       "各人次交付数量 × 合同单价之和（分）。",
       "Sum over person-times of delivered units times the contract line's unit price (fen)."),
    _d("budget_fen", "cost", "fen", "预算（按期折算）", "Budget (for the period)",
       "合同预算按期内合同天数占合同总天数的比例折算后之和；仅按机构、合同分组时计算。",
       "Contract budgets prorated by the days of the period inside the contract over the contract's days; only "
       "when grouped by organisation or contract."),
    _d("budget_execution", "cost", "rate", "预算执行率", "Budget execution",
       "交付金额 ÷ 预算（按期折算）。",
       "Delivered value divided by the budget (for the period)."),
    _d("cost_per_person_time_fen", "cost", "fen", "人次成本", "Cost per person-time",
       "交付金额 ÷ 服务人次（分）。",
       "Delivered value divided by person-times (fen)."),
    _d("cost_per_recipient_fen", "cost", "fen", "人均成本", "Cost per recipient",
       "交付金额 ÷ 服务人数（分）。",
       "Delivered value divided by recipients served (fen)."),
    _d("travel_share", "cost", "rate", "路途时间占比", "Travel share of paid time",
       "排班路途分钟 ÷（路途分钟 + 服务分钟），按服务人次计。",
       "Rostered travel minutes divided by travel plus service minutes, over person-times."),
)
DEFINITION_BY_CODE = {d.code: d for d in DEFINITIONS}
FIGURES = tuple(d.code for d in DEFINITIONS)


# --- periods ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, order=True)
class Bucket:
    """One stretch of a period granularity: its label and first and last day."""

    first: date
    last: date
    label: str


def bucket_of(day: date, granularity: str) -> Bucket:
    """The day, ISO week, month, quarter or year that holds `day`."""
    if granularity == "day":
        return Bucket(day, day, day.isoformat())
    if granularity == "week":
        first = day - timedelta(days=day.weekday())
        year, week, _ = day.isocalendar()
        return Bucket(first, first + timedelta(days=6), f"{year}-W{week:02d}")
    if granularity == "month":
        first = day.replace(day=1)
        return Bucket(first, _next_month(first) - timedelta(days=1), f"{day.year}-{day.month:02d}")
    if granularity == "quarter":
        quarter = (day.month - 1) // 3
        first = date(day.year, 3 * quarter + 1, 1)
        return Bucket(first, add_months(first, 3) - timedelta(days=1), f"{day.year}-Q{quarter + 1}")
    if granularity == "year":
        return Bucket(date(day.year, 1, 1), date(day.year, 12, 31), str(day.year))
    raise ValueError(f"Unknown period granularity: {granularity}")


def buckets_between(first: date, last: date, granularity: str) -> list[Bucket]:
    """Every bucket of `granularity` that overlaps first..last, in order."""
    found, day = [], first
    while day <= last:
        bucket = bucket_of(day, granularity)
        found.append(bucket)
        day = bucket.last + timedelta(days=1)
    return found


def _next_month(first: date) -> date:
    return add_months(first, 1)


def add_months(first: date, months: int) -> date:
    """The first of the month `months` after (or before) the month of `first`."""
    index = first.year * 12 + first.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def overlap_days(first: date, last: date, other_first: date, other_last: date) -> int:
    """Days the two closed ranges share."""
    return max(0, (min(last, other_last) - max(first, other_first)).days + 1)


# --- grouping --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Grouping:
    """What a report is split by: dimensions (in order) and, optionally, a period granularity."""

    dimensions: tuple[str, ...] = ()
    period: str | None = None

    @classmethod
    def parse(cls, names: Sequence[str]) -> Grouping:
        """From names like ("organisation", "month"); raises ValueError on an unknown or repeated name."""
        dimensions, period = [], None
        for name in names:
            if name in PERIODS and period is None:
                period = name
            elif name in DIMENSIONS and name not in dimensions:
                dimensions.append(name)
            else:
                raise ValueError(name)
        return cls(tuple(dimensions), period)

    @property
    def names(self) -> tuple[str, ...]:
        """The names of the key's parts, in key order."""
        return self.dimensions + ((self.period,) if self.period else ())

    def applies_to(self, allowed: frozenset[str]) -> bool:
        """Whether every dimension of the grouping is one the kind of record has."""
        return set(self.dimensions) <= allowed


def _value(fact, dimension: str):
    return getattr(fact, dimension)


def visit_key(fact: VisitFact, grouping: Grouping) -> tuple:
    """The group a visit falls in."""
    key = tuple(_value(fact, d) for d in grouping.dimensions)
    return key + (bucket_of(fact.service_date, grouping.period).label,) if grouping.period else key


def in_group(fact: VisitFact, grouping: Grouping, key: Sequence) -> bool:
    """Whether the visit is one of the records behind the group `key`."""
    return visit_key(fact, grouping) == tuple(key)


def contribution(fact: VisitFact) -> dict:
    """What one visit adds to the summed figures of any group it is in."""
    delivered = fact.outcome == DELIVERED
    return {
        "person_times": int(delivered),
        "service_hours": _hours(fact) if delivered else 0.0,
        "delivered_units": fact.units if delivered and fact.line is not None else 0.0,
        "delivered_value_fen": _value_fen(fact) if delivered else 0,
        "missed": int(fact.outcome == MISSED),
    }


def service_seconds(fact: VisitFact) -> float:
    """Seconds from a visit's check-in to its check-out (0 without both)."""
    if fact.started_at is None or fact.ended_at is None:
        return 0.0
    return max(0.0, (fact.ended_at - fact.started_at).total_seconds())


def _hours(fact: VisitFact) -> float:
    return service_seconds(fact) / 3600


def _value_fen(fact: VisitFact) -> int:
    return round(fact.units * fact.unit_price_fen) if fact.line is not None else 0


# --- blocks of visits -------------------------------------------------------------------------------------

SCORES = (1, 2, 3, 4, 5)
# What a block sums, in this order (value_fen last: the database sums the others, and the value is added after).
SUMS = ("visits", "person_times", "missed", "service_s", "units", *(f"score_{k}" for k in SCORES), "exceptions",
        "corrected", "manual", "certified", "on_time", "late", "within_24h", "travel_min", "value_fen")
# What a block is keyed by: the dimensions, the need (for coverage) and the period bucket.
BLOCK_KEYS = (*DIMENSIONS, "need", "bucket")
_NOTHING = dict.fromkeys(SUMS, 0)
_PERSON_TIMES = SUMS.index("person_times")


class VisitBlock(NamedTuple):  # a named tuple, not a dataclass: a district month makes 60,000 of them
    """Visits that share everything a report splits by (organisation, contract in force, service type, category,
    town, recipient class, worker, recipient), their need and their period bucket, with the sums of `SUMS`."""

    organisation: int
    contract: int | None
    service_type: str
    category: str
    town: int
    recipient_class: str
    worker: int | None
    recipient: int
    need: int | None
    bucket: str | None
    sums: tuple  # in the order of SUMS


def visit_sums(fact: VisitFact, grace: Grace = Grace()) -> dict:
    """What one visit adds to each of `SUMS`. These are the figures' definitions; the database's sums
    (`servicehub.evaluation.services.load_visit_blocks`) follow them and a test holds the two equal."""
    if fact.outcome != DELIVERED:
        return {**_NOTHING, "visits": 1, "missed": int(fact.outcome == MISSED)}
    share = contribution(fact)
    started, ended = fact.started_at, fact.ended_at
    late = started is not None and arrived_late(fact.expected_start, started, fact.meal, grace)
    return {
        **_NOTHING,
        "visits": 1,
        "person_times": 1,
        "service_s": max(0.0, (ended - started).total_seconds()) if started and ended else 0.0,
        "units": share["delivered_units"],
        "value_fen": share["delivered_value_fen"],
        **({f"score_{fact.satisfaction}": 1} if fact.satisfaction in SCORES else {}),
        "exceptions": int(fact.exception),
        "corrected": int(fact.corrected),
        "manual": int(fact.manual),
        "certified": int(fact.certified),
        "on_time": int(started is not None and not late),
        "late": int(late),
        "within_24h": int(fact.received_at is not None and ended is not None
                          and fact.received_at - ended <= SUBMITTED_WITHIN),
        "travel_min": fact.travel_min,
    }


def blocks_from_facts(visits: Iterable[VisitFact], period: Period, grouping: Grouping,
                      grace: Grace = Grace()) -> list[VisitBlock]:
    """The period's visits summed into blocks (the bucket is the grouping's period bucket, or None)."""
    summed: dict[tuple, list] = {}
    for fact in visits:
        if not period.first <= fact.service_date <= period.last:
            continue
        key = (*(getattr(fact, name) for name in DIMENSIONS), fact.need, _label(fact.service_date, grouping))
        values = visit_sums(fact, grace)
        total = summed.setdefault(key, [0] * len(SUMS))
        for index, name in enumerate(SUMS):
            total[index] += values[name]
    return [VisitBlock(*key, sums=tuple(values)) for key, values in summed.items()]


# --- the figures -----------------------------------------------------------------------------------------


@dataclass
class _Tally:
    """Running sums for one group."""

    sums: list = field(default_factory=lambda: [0] * len(SUMS))
    by_recipient_worker: dict = field(default_factory=dict)  # recipient -> worker -> person-times
    contracted_units: float = 0.0
    has_lines: bool = False
    budget_fen: float = 0.0
    has_budget: bool = False
    need_recipients: dict = field(default_factory=dict)  # recipient -> every need counted so far was served
    days_to_first: list = field(default_factory=list)

    pending: list = field(default_factory=list)  # blocks' sums not yet added (added column by column at once)

    def settled(self) -> list:
        """The sums, with every block added so far."""
        if self.pending:
            self.sums = [total + sum(column) for total, column in zip(self.sums, zip(*self.pending, strict=True), strict=True)]
            self.pending = []
        return self.sums

    def add_sums(self, other: _Tally) -> None:
        """Add another tally's sums to this one's."""
        self.pending.append(other.settled())

    def figures(self) -> dict:
        """Every figure of DEFINITIONS from the sums (None where its denominator is zero)."""
        v = dict(zip(SUMS, self.settled(), strict=True))
        n, value_fen = v["person_times"], v["value_fen"]
        scores = {k: v[f"score_{k}"] for k in SCORES}
        scored = sum(scores.values())
        continuity = sum(_most_frequent(workers.values()) for workers in self.by_recipient_worker.values())
        recipients = len(self.by_recipient_worker)
        covered = sum(self.need_recipients.values())
        paid = v["travel_min"] + v["service_s"] / 60
        return {
            "person_times": n,
            "recipients": recipients,
            "service_hours": round(v["service_s"] / 3600, 2),
            "delivered_units": round(v["units"], 2),
            "contracted_units": round(self.contracted_units, 2) if self.has_lines else None,
            "contract_completion": _ratio(v["units"], self.contracted_units) if self.has_lines else None,
            "coverage": _ratio(covered, len(self.need_recipients)),
            "satisfaction_mean": round(sum(k * c for k, c in scores.items()) / scored, 3) if scored else None,
            "satisfaction_distribution": {str(k): c for k, c in scores.items()},
            "exception_rate": _ratio(v["exceptions"], n),
            "corrected_rate": _ratio(v["corrected"], n),
            "manual_or_edited_rate": _ratio(v["manual"], n),
            "continuity": _ratio(continuity, n),
            "certified_share": _ratio(v["certified"], n),
            "on_time_rate": _ratio(v["on_time"], n),
            "late_rate": _ratio(v["late"], n),
            "missed": v["missed"],
            "missed_rate": _ratio(v["missed"], n + v["missed"]),
            "days_to_first_visit": round(sum(self.days_to_first) / len(self.days_to_first), 2)
            if self.days_to_first else None,
            "submitted_24h_rate": _ratio(v["within_24h"], n),
            "delivered_value_fen": value_fen,
            "budget_fen": round(self.budget_fen) if self.has_budget else None,
            "budget_execution": _ratio(value_fen, self.budget_fen) if self.has_budget else None,
            "cost_per_person_time_fen": round(value_fen / n) if n else None,
            "cost_per_recipient_fen": round(value_fen / recipients) if recipients else None,
            "travel_share": _ratio(v["travel_min"], paid),
        }


def _ratio(numerator: float, denominator: float) -> float | None:
    return round(numerator / denominator, 4) if denominator else None


@dataclass(frozen=True)
class Period:
    """The report's closed range of days."""

    first: date
    last: date

    @property
    def days(self) -> int:
        """How many days it spans."""
        return (self.last - self.first).days + 1


def _most_frequent(person_times) -> int:
    """The person-times of a recipient's CONTINUITY_WORKERS most frequent workers (most have no more)."""
    if len(person_times) <= CONTINUITY_WORKERS:
        return sum(person_times)
    return sum(sorted(person_times)[-CONTINUITY_WORKERS:])  # a few workers: faster than a heap


def _spans(period: Period, grouping: Grouping, first: date, last: date) -> list[tuple[str | None, date, date]]:
    """The parts of first..last inside the report's period, one per period bucket (or one part)."""
    first, last = max(first, period.first), min(last, period.last)
    if first > last:
        return []
    if not grouping.period:
        return [(None, first, last)]
    return [(b.label, max(first, b.first), min(last, b.last)) for b in buckets_between(first, last, grouping.period)]


def _with_bucket(key: tuple, label: str | None) -> tuple:
    return key if label is None else key + (label,)


def _add_lines(tallies: dict, total: _Tally, lines: Iterable[LineFact], period: Period, grouping: Grouping) -> None:
    by_lines = grouping.applies_to(LINE_DIMENSIONS) and bool(grouping.names)
    by_budget = grouping.applies_to(BUDGET_DIMENSIONS) and bool(grouping.names)
    budgeted: set[tuple] = set()
    for line in lines:
        contract_days = (line.contract_end - line.contract_start).days + 1
        key = tuple(_value(line, d) for d in grouping.dimensions) if by_lines else ()
        for label, first, last in _spans(period, grouping, line.contract_start, line.contract_end):
            share = (last - first).days / contract_days + 1 / contract_days
            group = tallies[_with_bucket(key, label)] if by_lines or by_budget else None
            for tally in (total, group if by_lines else None):
                if tally is not None:
                    tally.has_lines = True
                    tally.contracted_units += line.contracted_units * share
            if (line.contract, label) in budgeted:
                continue
            budgeted.add((line.contract, label))
            for tally in (total, group if by_budget else None):
                if tally is not None:
                    tally.has_budget = True
                    tally.budget_fen += line.contract_budget_fen * share


def _days_to_count(need: NeedFact) -> int:
    """A need counts in a stretch of days that can hold its quantity: a week for weekly needs, 28 days for
    monthly ones (so coverage per day is not computed)."""
    return 28 if need.period == "month" else 7


def _add_needs(tallies: dict, total: _Tally, needs: Iterable[NeedFact], served: set[tuple], period: Period,
               grouping: Grouping) -> None:
    by_needs = grouping.applies_to(NEED_DIMENSIONS) and bool(grouping.names)
    by_bucket = by_needs and bool(grouping.period)
    key_of = _key_of(NeedFact, Grouping(grouping.dimensions)) if by_needs else None
    bucket_days: dict[str | None, int] = {}  # the days of each bucket inside the report
    report_days = period.days
    # Inlined, not a function per need and tally: this loop runs for every need in force (a district: 42,000).
    for need in needs:
        first, last = max(need.starts, period.first), min(need.ends or period.last, period.last)
        if first > last:
            continue
        least = _days_to_count(need)
        key = key_of(need) if key_of is not None else ()
        recipient = need.recipient
        if report_days >= least:
            hit = (need.need_id, None) in served
            for counted in (total, tallies[key]) if by_needs and not by_bucket else (total,):
                counts = counted.need_recipients
                counts[recipient] = counts.get(recipient, True) and hit
        for label, span_first, span_last in (_spans(period, grouping, first, last) if by_bucket else ()):
            days = bucket_days.get(label)
            if days is None:
                bucket_first, bucket_last = _bucket_span(span_first, span_last, label, grouping, period)
                days = bucket_days[label] = (bucket_last - bucket_first).days + 1
            if days >= least:
                counts = tallies[_with_bucket(key, label)].need_recipients
                counts[recipient] = counts.get(recipient, True) and (need.need_id, label) in served
        if need.first_delivery is not None and period.first <= need.first_delivery <= period.last \
                and need.first_delivery >= need.registered:
            days = (need.first_delivery - need.registered).days
            total.days_to_first.append(days)
            if by_needs:
                tallies[_with_bucket(key, _label(need.first_delivery, grouping))].days_to_first.append(days)


def _bucket_span(first: date, last: date, label: str | None, grouping: Grouping, period: Period) -> tuple[date, date]:
    """The days of the group's period bucket inside the report (the whole report when not split by period)."""
    if label is None:
        return period.first, period.last
    bucket = bucket_of(first, grouping.period)
    return max(bucket.first, period.first), min(bucket.last, period.last)


def _label(day: date, grouping: Grouping) -> str | None:
    return bucket_of(day, grouping.period).label if grouping.period else None


@dataclass(frozen=True)
class Report:
    """Figures per group and for the whole, with what they were computed over."""

    period: Period
    grouping: Grouping
    groups: list[tuple[tuple, dict]]  # (key, figures), keys in sorted order
    total: dict
    visits: int = 0  # delivered, missed and cancelled visits behind it

    def as_dict(self) -> dict:
        """Plain JSON-ready data."""
        return {
            "from": self.period.first.isoformat(),
            "to": self.period.last.isoformat(),
            "group_by": list(self.grouping.names),
            "groups": [{"key": dict(zip(self.grouping.names, key, strict=True)), "figures": figures}
                       for key, figures in self.groups],
            "total": self.total,
        }


def kpi_report(visits: Iterable[VisitFact], needs: Iterable[NeedFact], lines: Iterable[LineFact], period: Period,
               grouping: Grouping = Grouping(), grace: Grace = Grace()) -> Report:
    """Every figure of DEFINITIONS for each group of `grouping` and for the whole period."""
    return report_from_blocks(blocks_from_facts(visits, period, grouping, grace), needs, lines, period, grouping)


def report_from_blocks(blocks: Iterable[VisitBlock], needs: Iterable[NeedFact], lines: Iterable[LineFact],
                       period: Period, grouping: Grouping = Grouping()) -> Report:
    """`kpi_report` from the period's visits already summed into blocks (bucketed by the grouping's period)."""
    tallies: dict[tuple, _Tally] = defaultdict(_Tally)
    total = _Tally()
    served: set[tuple] = set()
    group_of = _key_of(VisitBlock, grouping)
    # Inlined, not a method per block and tally: this loop runs for every block of a district month (60,000).
    for block in blocks:
        sums, recipient, worker = block.sums, block.recipient, block.worker
        # Every block is in exactly one group: the total's sums are the groups' (added below).
        tally = tallies[group_of(block)] if group_of is not None else total
        tally.pending.append(sums)
        delivered = sums[_PERSON_TIMES]
        if not delivered:
            continue
        for counted in (total, tally) if tally is not total else (total,):
            workers = counted.by_recipient_worker.setdefault(recipient, {})
            workers[worker] = workers.get(worker, 0) + delivered
        if block.need is not None:
            served.add((block.need, None))
            if grouping.period:
                served.add((block.need, block.bucket))
    for tally in tallies.values():
        total.add_sums(tally)
    _add_lines(tallies, total, lines, period, grouping)
    _add_needs(tallies, total, needs, served, period, grouping)
    groups = sorted(((key, tally.figures()) for key, tally in tallies.items()), key=lambda item: _sort_key(item[0]))
    return Report(period, grouping, groups, total.figures(), total.settled()[SUMS.index("visits")])


def _key_of(record_type: type, grouping: Grouping):
    """A function giving a named tuple's group key (its dimensions, then its `bucket` field when the grouping
    has a period), or None when the report is not grouped."""
    fields = [*grouping.dimensions, *(("bucket",) if grouping.period else ())]
    if not fields:
        return None
    at = [record_type._fields.index(name) for name in fields]
    if len(at) == 1:
        only = at[0]
        return lambda record: (record[only],)
    return itemgetter(*at)


def _sort_key(key: tuple) -> tuple:
    return tuple((value is None, str(value) if not isinstance(value, int) else f"{value:012d}") for value in key)
