"""The demo district, modelled on the Zhenjiang New District pilot, built reproducibly from a seed.

Pure module: it returns plain data (lists of dicts, JSON-ready: dates and times as ISO strings, other
parts referred to by natural keys) that `servicehub demo build` writes to seed_data/demo/ and
`servicehub seed demo` loads, and that `servicehub demo generate` builds bigger for load tests.
Names, ID numbers and phone numbers of people are fictitious.

The district: 5 towns/streets with 35 communities; social-work stations, community home-care centres,
disability homes, inclusive-education and child-rehabilitation centres and child care homes; 8
organisations, each with one contract for 2026 and its workers; 147 recipients with their need lists.
Every contract line is sized to hold the demand of the needs meant for it, and the contracts together
are funded with 1,000,000 CNY.
"""

from __future__ import annotations

import math
import random
import tomllib
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, time, timedelta
from functools import cache

from servicehub.catalog.codes import CATALOG_FILE
from servicehub.registry import rules
from servicehub.registry.identifiers import (
    credit_code_check_char,
    credit_code_problem,
    id_number_check_digit,
    mask_id_number,
)

DEMO_SEED = 20240601
AREA_SEED = 3211910  # communities are the same district whatever the seed
# The demo's "today": qualification expiry dates are placed around it (a few within 30 days).
REFERENCE_DATE = date(2026, 12, 1)
PERIOD = (date(2026, 1, 1), date(2026, 12, 31))  # the contracts' year
DEMO_BUDGET_FEN = 100_000_000  # 1,000,000 CNY for the 147 recipients of the demo
GOVERNMENT_FUNDER = "镇江新区民政局"
CHARITY_FUNDERS = ("镇江市慈善总会", "镇江新区慈善会", "江苏省慈善基金会")

DISTRICT = {"code": "321191", "name_zh": "镇江新区", "name_en": "Zhenjiang New District", "lat": 32.190, "lon": 119.660}

# (code suffix, name_zh, name_en, centroid lat, lon)
TOWNS = [
    ("001", "大港街道", "Dagang Subdistrict", 32.205, 119.685),
    ("002", "丁卯街道", "Dingmao Subdistrict", 32.155, 119.520),
    ("003", "丁岗镇", "Dinggang Town", 32.170, 119.640),
    ("004", "大路镇", "Dalu Town", 32.215, 119.760),
    ("005", "姚桥镇", "Yaoqiao Town", 32.245, 119.815),
]

# Per town: (code suffix, name_zh, name_en). Residents' committees (社区) are numbered from 001,
# villagers' committees (村) from 201, as in the statistical division codes.
COMMUNITIES = {
    "001": [("001", "港南社区", "Gangnan Community"), ("002", "赵声社区", "Zhaosheng Community"),
            ("003", "金港社区", "Jingang Community"), ("004", "新港社区", "Xingang Community"),
            ("005", "北山社区", "Beishan Community"), ("006", "兴港社区", "Xinggang Community"),
            ("007", "圌山社区", "Chuishan Community")],
    "002": [("001", "谷阳社区", "Guyang Community"), ("002", "丁卯桥社区", "Dingmaoqiao Community"),
            ("003", "学府社区", "Xuefu Community"), ("004", "江大社区", "Jiangda Community"),
            ("005", "长香社区", "Changxiang Community"), ("006", "沁园社区", "Qinyuan Community")],
    "003": [("001", "丁岗社区", "Dinggang Community"), ("201", "丁岗村", "Dinggang Village"),
            ("202", "葛村村", "Gecun Village"), ("203", "沙腰村", "Shayao Village"),
            ("204", "寺庄村", "Sizhuang Village"), ("205", "高桥村", "Gaoqiao Village"),
            ("206", "新竹村", "Xinzhu Village")],
    "004": [("001", "大路社区", "Dalu Community"), ("201", "大路村", "Dalu Village"),
            ("202", "小港村", "Xiaogang Village"), ("203", "通港村", "Tonggang Village"),
            ("204", "华山村", "Huashan Village"), ("205", "姚家村", "Yaojia Village"),
            ("206", "复兴村", "Fuxing Village"), ("207", "王家村", "Wangjia Village")],
    "005": [("001", "姚桥社区", "Yaoqiao Community"), ("201", "儒里村", "Ruli Village"),
            ("202", "迎北村", "Yingbei Village"), ("203", "石桥村", "Shiqiao Village"),
            ("204", "平昌村", "Pingchang Village"), ("205", "联合村", "Lianhe Village"),
            ("206", "五峰村", "Wufeng Village")],
}
ROADS = {
    "001": ["港南路", "赵声路", "金港大道", "通港路", "兴港路", "疏港路"],
    "002": ["丁卯桥路", "谷阳大道", "学府路", "长香西大道", "经十二路", "檀山路"],
    "003": ["丁岗路", "葛村路", "沿江公路", "新竹路"],
    "004": ["大路中路", "华山路", "复兴路", "通港东路"],
    "005": ["姚桥路", "儒里路", "镇大路", "五峰山路"],
}

# The eight demo organisations: (name_zh, name_en, short name); their profiles follow in this order.
ORGANISATIONS = [
    ("镇江新区乐龄居家养老服务中心", "Leling Home Care Centre", "乐龄居家"),
    ("镇江新区阳光社会工作服务社", "Sunshine Social Work Agency", "阳光社工"),
    ("镇江新区康宁康复服务中心", "Kangning Rehabilitation Centre", "康宁康复"),
    ("镇江新区同心残疾人服务中心", "Tongxin Disability Services", "同心助残"),
    ("镇江新区童心儿童关爱服务中心", "Tongxin Children's Care Centre", "童心关爱"),
    ("镇江新区暖心助餐服务社", "Nuanxin Meal Service", "暖心助餐"),
    ("镇江新区安馨心理咨询服务中心", "Anxin Counselling Centre", "安馨心理"),
    ("镇江新区和美家政服务社", "Hemei Home Services", "和美家政"),
]
# Brand names of the scale generator's organisations: (中文, pinyin).
BRANDS = [
    ("福寿", "Fushou"), ("爱心", "Aixin"), ("启明", "Qiming"), ("春晖", "Chunhui"), ("善缘", "Shanyuan"),
    ("益众", "Yizhong"), ("仁和", "Renhe"), ("德馨", "Dexin"), ("颐康", "Yikang"), ("众诚", "Zhongcheng"),
    ("永安", "Yong'an"), ("惠民", "Huimin"), ("祥和", "Xianghe"), ("长青", "Changqing"), ("晨曦", "Chenxi"),
    ("明德", "Mingde"), ("博爱", "Bo'ai"), ("睦邻", "Mulin"), ("金港", "Jingang"), ("银山", "Yinshan"),
]

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高郑梁谢宋唐许韩冯邓曹彭曾肖田董潘袁蔡蒋余于杜叶程魏苏吕丁任沈姚卢"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰红梅建国志强文斌海燕淑珍春梅德明桂芳"
GIVEN_BY_GENDER = {
    "male": "伟强磊军洋勇杰涛明超刚建国志文斌海德宝福根荣林华平东浩宇轩泽",
    "female": "芳娜敏静丽艳娟秀霞桂英华玉兰红梅燕淑珍春凤琴萍婷雪梓涵欣怡",
}


@dataclass(frozen=True)
class Profile:
    """What kind of organisation: the stations it runs, its workers, and the contract it holds."""

    key: str
    suffix_zh: str  # the type of organisation, for generated names
    suffix_en: str
    worker_prefix: str  # employee numbers: <prefix>001 …
    worker_weight: int  # its share of the workers (the demo's head count)
    shift: str  # key of SHIFTS
    qualifications: tuple[tuple[str, float], ...]  # (qualification, share of its workers holding it)
    contract_zh: str
    contract_en: str
    lines: tuple[str, ...]  # contracted service types
    eligible: tuple[str, ...]  # assistance classes it serves


PROFILES = [
    Profile("home_care", "居家养老服务中心", "Home Care Centre", "JJ", 15, "day", (),
            "低保重残居家照护项目", "Home care for low-income people with severe disabilities",
            ("LC02", "LC03", "LC06", "RC01"), ("dibao", "severe_disability")),
    Profile("social_work", "社会工作服务社", "Social Work Agency", "SG", 7, "day", (("counsellor", 0.15),),
            "社会救助社工服务项目", "Social work for people receiving assistance",
            ("PS01", "LC05", "LC04"), ("dibao", "tekun", "dibao_edge", "expenditure_hardship", "elderly_alone")),
    Profile("rehabilitation", "康复服务中心", "Rehabilitation Centre", "KF", 8, "day",
            (("rehab_therapist", 0.625), ("doctor", 0.25)),
            "居家康复服务项目", "Rehabilitation at home",
            ("RH01", "RH02", "RH03"),
            ("dibao", "tekun", "severe_disability", "elderly_alone", "expenditure_hardship")),
    Profile("disability", "残疾人服务中心", "Disability Services", "CJ", 7, "day", (("rehab_therapist", 0.15),),
            "重残家庭喘息服务项目", "Respite for families caring for a severely disabled member",
            ("RC01", "RC02"), ("severe_disability",)),
    Profile("children", "儿童关爱服务中心", "Children's Care Centre", "ET", 7, "children",
            (("special_education", 0.43),),
            "困境儿童关爱项目", "Care for children in difficulty",
            ("CD01", "CD02", "CD03"), ("child_in_difficulty",)),
    Profile("meals", "助餐服务社", "Meal Service", "ZC", 6, "meals", (),
            "独居老人爱心午餐项目", "Free lunches for older people living alone",
            ("LC01", "PS03"), ("elderly_alone", "tekun", "dibao_edge")),
    Profile("counselling", "心理咨询服务中心", "Counselling Centre", "XL", 4, "day", (("counsellor", 1.0),),
            "困难群众心理关爱项目", "Counselling for people in hardship",
            ("PS02",), ("dibao", "severe_disability", "elderly_alone", "expenditure_hardship", "child_in_difficulty")),
    Profile("housekeeping", "家政服务社", "Home Services", "JZ", 6, "day", (),
            "困难家庭居家保洁项目", "Home cleaning for households in hardship",
            ("LC02", "LC06"), ("tekun", "dibao_edge", "expenditure_hardship", "elderly_alone")),
]
PROFILE_BY_KEY = {p.key: p for p in PROFILES}
# A need goes to the first profile in this order whose contract has its type and serves its class.
ROUTING_ORDER = ("disability", "meals", "children", "counselling", "rehabilitation", "home_care", "housekeeping",
                 "social_work")


@dataclass(frozen=True)
class StationPlan:
    """A kind of station: how many in the demo, who runs them, where they go and what they are called."""

    kind: str
    prefix: str  # codes: <prefix>-001 …
    count: int
    runners: tuple[str, ...]  # profiles that run them, in turn
    suffix_zh: str
    suffix_en: str
    town_level: bool  # named after the town (社工站) rather than the community (居家养老服务中心)
    start: int  # first community (in the interleaved order of `places`) and step between them
    step: int
    capacity: tuple[int, int] | None


STATIONS = [
    StationPlan("social_work_station", "SW", 5, ("social_work",), "社工站", "Social Work Station", True, 0, 1, None),
    StationPlan("home_care_centre", "HC", 30, ("home_care", "home_care", "home_care", "meals"), "居家养老服务中心",
                "Home Care Centre", False, 0, 1, (20, 60)),
    StationPlan("disability_home", "DH", 16, ("disability",), "残疾人之家", "Disability Home", False, 1, 2, (15, 30)),
    StationPlan("inclusive_education_centre", "IE", 2, ("children",), "融合教育中心", "Inclusive Education Centre",
                True, 1, 1, (20, 40)),
    StationPlan("child_rehab_centre", "CR", 2, ("rehabilitation",), "儿童康复中心", "Child Rehabilitation Centre",
                True, 3, 1, (10, 30)),
    StationPlan("child_care_home", "CC", 2, ("children",), "儿童关爱之家", "Child Care Home", True, 0, 1, (10, 20)),
]

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# Weekday shifts; some workers also work Saturday mornings, some only three days a week.
SHIFTS = {
    "day": ([["08:00", "17:30"]], [["08:00", "12:00"]]),  # lunch is a break the roster places (11:30-13:30)
    "meals": ([["09:30", "13:30"], ["14:30", "17:30"]], [["09:30", "13:30"]]),
    "children": ([["12:00", "20:00"]], [["09:00", "12:00"], ["14:00", "18:00"]]),
}



@dataclass(frozen=True)
class ClassPlan:
    """Recipients of one assistance class: how many in the demo, born when, which subclasses how often."""

    code: str
    count: int
    born: tuple[int, int]  # first and last birth year
    subclasses: tuple[tuple[str, int], ...]  # (subclass, weight); older people living alone: by age


CLASSES = [
    ClassPlan("dibao", 50, (1950, 1990), (("dibao_severe_disability", 1),)),
    ClassPlan("elderly_alone", 40, (1930, 1960), ()),
    ClassPlan("child_in_difficulty", 25, (2010, 2021),
              (("orphan", 3), ("unsupported", 5), ("disabled_child", 6), ("poor_family_child", 11))),
    ClassPlan("tekun", 10, (1935, 1965), (("tekun_dispersed", 1),)),
    ClassPlan("severe_disability", 10, (1955, 2002),
              (("physical", 4), ("intellectual", 2), ("mental", 2), ("visual", 1), ("multiple", 1))),
    ClassPlan("dibao_edge", 6, (1945, 1975), ()),
    ClassPlan("expenditure_hardship", 6, (1955, 1988), (("medical", 7), ("education", 3))),
]
DEMO_RECIPIENTS = sum(c.count for c in CLASSES)  # 147
RESPITE_SHARE = {"dibao": 12, "severe_disability": 6}  # families given in-home respite (RC01) in the demo
# Zhenjiang area codes for the first six digits of ID numbers: 新区, 京口, 润州, 丹徒.
ID_AREAS = (("321191", 12), ("321102", 3), ("321111", 2), ("321112", 3))

# Needs a recipient of each class may have: (service type, probability), in order of importance.
NEED_TEMPLATES = {
    "dibao": (("LC02", 0.7), ("LC03", 0.5), ("RH01", 0.25), ("LC06", 0.3), ("PS01", 0.15)),
    "severe_disability": (("RH01", 0.4), ("RC02", 0.3), ("LC03", 0.3), ("LC02", 0.3), ("PS02", 0.1)),
    "elderly_alone": (("LC01", 0.8), ("PS03", 0.9), ("LC02", 0.2), ("RH03", 0.15), ("PS01", 0.15)),
    "child_in_difficulty": (("CD03", 0.0), ("CD02", 0.8), ("CD01", 0.6), ("PS02", 0.0)),  # by subclass, see below
    "tekun": (("LC02", 0.6), ("LC01", 0.5), ("PS03", 0.6), ("RH03", 0.3), ("LC04", 0.3), ("LC06", 0.2)),
    "dibao_edge": (("LC02", 0.5), ("PS01", 0.4), ("LC05", 0.4), ("PS03", 0.3)),
    "expenditure_hardship": (("PS02", 0.5), ("RH02", 0.4), ("LC05", 0.4), ("LC02", 0.2)),
}
HOME_SERVICES = ("LC02", "LC03", "LC06")  # every 低保重残 household receives at least one
MAX_NEEDS = 4

# Frequency of each service type: (quantities to choose from, period, ISO weekdays to place them on).
MON_FRI, MON_SAT = (1, 2, 3, 4, 5), (1, 2, 3, 4, 5, 6)
FREQUENCY = {
    "LC01": ((5,), "week", MON_FRI),
    "LC02": ((1, 1, 1, 2), "week", MON_SAT),
    "LC03": ((1,), "week", MON_SAT),
    "LC04": ((1,), "month", ()),
    "LC05": ((2,), "month", ()),
    "LC06": ((1,), "week", MON_SAT),
    "RH01": ((2,), "week", MON_FRI),
    "RH02": ((1,), "week", MON_FRI),
    "RH03": ((1,), "month", ()),
    "PS01": ((1,), "week", MON_FRI),
    "PS02": ((2,), "month", ()),
    "PS03": ((1, 2), "week", MON_FRI),
    "RC01": ((1, 2), "week", MON_SAT),
    "RC02": ((3, 4, 5), "week", MON_FRI),
    "CD01": ((2,), "week", MON_FRI),
    "CD02": ((2,), "month", ()),
    "CD03": ((1, 2), "week", MON_FRI),
}
# Narrower windows some recipients ask for: type -> (share, window).
NARROW_WINDOWS = {
    "LC02": (0.2, ("08:30", "12:00")),
    "RH01": (0.25, ("08:30", "12:00")),
    "RC01": (0.3, ("13:00", "18:00")),
    "CD01": (0.3, ("18:00", "20:00")),
}
# Some needs are courses with an end: type -> (share, weeks).
COURSES = {"RH01": (0.4, 16), "RH02": (0.5, 12), "PS02": (0.5, 26)}
NOTES = {
    "dibao": ("长期卧床，需两人协助翻身", "使用轮椅", "偏瘫，右侧肢体无力", "家属白天上班，需提前电话联系"),
    "severe_disability": ("视力残疾，进门时请出声", "精神残疾，病情稳定，按时服药", "智力残疾，需家属在场", "使用轮椅"),
    "elderly_alone": ("子女在外地工作", "听力较差，请大声敲门", "患高血压，每日服药", "糖尿病，餐食少糖", "行走需拐杖"),
    "child_in_difficulty": ("由祖父母抚养", "父母外出务工", "孤独症谱系，需耐心沟通", "在读小学", "在读初中"),
    "tekun": ("分散供养，邻居协助照看", "行走需拐杖", "患慢性支气管炎"),
    "dibao_edge": ("因病致贫", "子女就学支出大"),
    "expenditure_hardship": ("家庭成员重病住院", "子女就学支出大"),
}


STAFFING = ("profile", "workload")
# Workload staffing: the travel planned per visit, and the share of their working minutes workers are planned
# for (the slack). The slack does not change how the workers are shared, only how many the needs ask for.
TRAVEL_ALLOWANCE_MIN = 5
UTILISATION = 0.85
MAX_MINUTES_PER_DAY = 480


@dataclass(frozen=True)
class Shape:
    """How big a district to build; the demo is Shape() — 147 recipients, 60 workers, 8 organisations."""

    recipients: int = DEMO_RECIPIENTS
    workers: int = 60
    organisations: int = len(ORGANISATIONS)
    scale: bool = False  # scale runs use their own code ranges, so they can sit beside the demo
    # How the workers are shared among the organisations' contracts: by the profiles' head counts (the demo's
    # proportions), or by workload (the workers the needs routed to each contract keep busy).
    staffing: str = "profile"

    def __post_init__(self) -> None:
        if self.staffing not in STAFFING:
            raise ValueError(f"staffing must be one of {STAFFING}, not {self.staffing!r}")

    @property
    def budget_fen(self) -> int:
        """All contracts together: 1,000,000 CNY per 147 recipients, in whole 10,000 CNY."""
        return max(1, round(DEMO_BUDGET_FEN * self.recipients / DEMO_RECIPIENTS / 1_000_000)) * 1_000_000


# --- the catalogue (read from seed_data/catalog.toml, the same file the database is seeded from) ----


@cache
def catalogue() -> dict:
    """Service types by code and assistance classes by code, from the catalogue seed file."""
    with CATALOG_FILE.open("rb") as fh:
        raw = tomllib.load(fh)
    types = {}
    for category in raw["category"]:
        for item in category["types"]:
            types[item["code"]] = {**item, "category": category["code"]}
    classes = {item["code"]: item for item in raw["assistance_class"]}
    return {"types": types, "classes": classes}


def units_per_delivery(service_type: dict) -> int:
    """How many contracted units one delivery of a type uses (hours for hourly types, else one)."""
    return rules.units_per_delivery(service_type["unit"], service_type["default_duration_min"])


def need_demand(need: dict, period: tuple[date, date] = PERIOD) -> int:
    """An upper bound of the units a need uses within the period (whole weeks or calendar months touched)."""
    start = max(date.fromisoformat(need["start_date"]), period[0])
    end = min(date.fromisoformat(need["end_date"]) if need["end_date"] else period[1], period[1])
    if end < start:
        return 0
    if need["period"] == "week":
        deliveries = need["quantity"] * math.ceil(((end - start).days + 1) / 7)
    else:
        deliveries = need["quantity"] * ((end.year - start.year) * 12 + end.month - start.month + 1)
    return deliveries * units_per_delivery(catalogue()["types"][need["service_type"]])


# --- small helpers -------------------------------------------------------------------------------


def fake_name(rng: random.Random, gender: str | None = None, surname: str | None = None) -> str:
    """A fictitious Chinese name (given-name characters fitting the gender, if one is given)."""
    pool = GIVEN_BY_GENDER[gender] if gender else GIVEN
    return (surname or rng.choice(SURNAMES)) + "".join(rng.choice(pool) for _ in range(rng.choice((1, 2))))


def fake_mobile(rng: random.Random) -> str:
    """A fictitious mainland mobile number."""
    return rng.choice(["138", "139", "150", "151", "158", "177", "186", "189"]) + f"{rng.randrange(10**8):08d}"


def fake_landline(rng: random.Random) -> str:
    """A fictitious Zhenjiang landline number (area code 0511)."""
    return f"0511-8{rng.randrange(10**7):07d}"


def credit_code(area_code: str, serial: int) -> str:
    """A valid unified social credit code of a civil-affairs-registered organisation (52…)."""
    body = f"52{area_code}MJ{serial:07d}"
    return body + credit_code_check_char(body)


def id_number(area: str, born: date, gender: str, rng: random.Random) -> str:
    """A valid resident ID number (GB 11643) for a person of this birth date and gender."""
    sequence = rng.randrange(500) * 2 + (1 if gender == "male" else 0)
    first17 = f"{area}{born:%Y%m%d}{sequence:03d}"
    return first17 + id_number_check_digit(first17)


def point_near(rng: random.Random, lat: float, lon: float, km: float) -> tuple[float, float]:
    """A point uniformly within `km` of (lat, lon), rounded to 6 decimals (about 0.1 m)."""
    distance, bearing = km * math.sqrt(rng.random()), rng.random() * 2 * math.pi
    dlat = distance * math.cos(bearing) / 111.0
    dlon = distance * math.sin(bearing) / (111.32 * math.cos(math.radians(lat)))
    return round(lat + dlat, 6), round(lon + dlon, 6)


def random_date(rng: random.Random, first: date, last: date) -> date:
    """A day between first and last, both included."""
    return first + timedelta(days=rng.randrange((last - first).days + 1))


def weighted(rng: random.Random, choices) -> str:
    """One of the (value, weight) pairs, by weight."""
    values, weights = zip(*choices, strict=True)
    return rng.choices(values, weights=weights)[0]


def apportion(total: int, weights: list[int], minimum: int = 0) -> list[int]:
    """Split `total` in proportion to `weights` (largest remainders), each part at least `minimum` if it can be."""
    if not weights:
        return []
    floor = minimum if total >= minimum * len(weights) else 0
    rest = total - floor * len(weights)
    exact = [rest * w / sum(weights) for w in weights]
    parts = [int(x) for x in exact]
    by_remainder = sorted(range(len(weights)), key=lambda i: (parts[i] - exact[i], i))
    for i in by_remainder[: rest - sum(parts)]:
        parts[i] += 1
    return [floor + p for p in parts]


def iso(value: date | None) -> str | None:
    """A date as an ISO string (None stays None)."""
    return value.isoformat() if value else None


# --- areas ---------------------------------------------------------------------------------------


def build_areas() -> list[dict]:
    """The district, its towns and their communities, parents first (the same whatever the seed)."""
    rng = random.Random(AREA_SEED)
    district = DISTRICT["code"]
    areas = [{"code": district, "name_zh": DISTRICT["name_zh"], "name_en": DISTRICT["name_en"],
              "level": "district", "parent": None, "lat": DISTRICT["lat"], "lon": DISTRICT["lon"]}]
    for suffix, name_zh, name_en, lat, lon in TOWNS:
        areas.append({"code": district + suffix, "name_zh": name_zh, "name_en": name_en,
                      "level": "town", "parent": district, "lat": lat, "lon": lon})
    for suffix, _, _, lat, lon in TOWNS:
        for c_suffix, name_zh, name_en in COMMUNITIES[suffix]:
            c_lat, c_lon = point_near(rng, lat, lon, 2.0)
            areas.append({"code": district + suffix + c_suffix, "name_zh": name_zh, "name_en": name_en,
                          "level": "community", "parent": district + suffix, "lat": c_lat, "lon": c_lon})
    return areas


@dataclass
class Place:
    """A community with its town, for addresses and points."""

    area: dict
    town: dict

    @property
    def town_suffix(self) -> str:
        """The town's three-digit code suffix."""
        return self.town["code"][6:9]

    def address(self, rng: random.Random) -> str:
        """A plausible postal address inside the community."""
        prefix = f"{DISTRICT['name_zh']}{self.town['name_zh']}{self.area['name_zh']}"
        if self.area["name_zh"].endswith("村"):
            return f"{prefix}{rng.randint(1, 12)}组{rng.randint(1, 60)}号"
        road = rng.choice(ROADS[self.town_suffix])
        return f"{prefix}{road}{rng.randint(1, 399)}号{rng.randint(1, 30)}栋{rng.randint(1, 6)}0{rng.randint(1, 4)}室"

    def street_address(self, rng: random.Random) -> str:
        """A street address for a station."""
        road = rng.choice(ROADS[self.town_suffix])
        return f"{DISTRICT['name_zh']}{self.town['name_zh']}{road}{rng.randint(1, 399)}号"


def places(areas: list[dict]) -> list[Place]:
    """The communities, interleaved by town (1st of each town, 2nd of each town, …) to spread things evenly."""
    towns = {a["code"]: a for a in areas if a["level"] == "town"}
    by_town: dict[str, list[dict]] = {}
    for area in areas:
        if area["level"] == "community":
            by_town.setdefault(area["parent"], []).append(area)
    columns = list(by_town.values())
    interleaved = []
    for row in range(max(len(c) for c in columns)):
        interleaved.extend(Place(c[row], towns[c[row]["parent"]]) for c in columns if row < len(c))
    return interleaved


# --- organisations -------------------------------------------------------------------------------


@dataclass
class Org:
    """An organisation being built: its record and the profiles it works under."""

    record: dict
    profiles: list[Profile]
    stations: list[dict] = field(default_factory=list)


def profiles_of(index: int, count: int) -> list[Profile]:
    """The profiles of organisation `index` of `count`: one each, or several each when there are fewer than eight."""
    if count >= len(PROFILES):
        return [PROFILES[index % len(PROFILES)]]
    return [p for i, p in enumerate(PROFILES) if i % count == index]


def build_organisations(rng: random.Random, shape: Shape = Shape()) -> list[Org]:
    """The contracted social organisations; with fewer than eight, some take on several profiles."""
    count = shape.organisations
    orgs = []
    for index in range(count):
        profiles = profiles_of(index, count)
        if shape.scale:
            brand_zh, brand_en = BRANDS[index % len(BRANDS)]
            number = index // len(BRANDS)
            name_zh = f"镇江新区{brand_zh}{profiles[0].suffix_zh}" + (f"（{number + 1}）" if number else "")
            name_en = f"{brand_en} {profiles[0].suffix_en}" + (f" ({number + 1})" if number else "")
            short, serial = brand_zh + profiles[0].suffix_zh[:2], 100_000 + index + 1
        else:
            name_zh, name_en, short = ORGANISATIONS[index]
            serial = (index + 1) * 1001
        town = TOWNS[index % len(TOWNS)]
        orgs.append(Org({
            "credit_code": credit_code(DISTRICT["code"], serial),
            "name_zh": name_zh,
            "name_en": name_en,
            "short_name": short,
            "legal_representative": fake_name(rng),
            "contact_name": fake_name(rng),
            "contact_phone": fake_mobile(rng),
            "address": f"{DISTRICT['name_zh']}{town[1]}{rng.randint(1, 300)}号",
            "status": "active",
        }, profiles))
    return orgs


def deals_of(orgs: list[Org]) -> list[tuple[Org, Profile]]:
    """The contracts to be: one (organisation, profile) deal for each profile an organisation works under."""
    return [(org, profile) for org in orgs for profile in org.profiles]


def orgs_with_profile(orgs: list[Org], key: str) -> list[Org]:
    """The organisations working under a profile."""
    return [o for o in orgs if any(p.key == key for p in o.profiles)]


# --- stations ------------------------------------------------------------------------------------


def build_stations(rng: random.Random, orgs: list[Org], spots: list[Place], shape: Shape) -> list[dict]:
    """The stations of each kind, spread over the communities, each run by an organisation of a fitting profile."""
    stations = []
    for plan in STATIONS:
        count = max(1, round(plan.count * shape.organisations / len(ORGANISATIONS))) if shape.scale else plan.count
        named: set[str] = set()
        for n in range(count):
            place = spots[(plan.start + n * plan.step) % len(spots)]
            candidates = orgs_with_profile(orgs, plan.runners[n % len(plan.runners)])
            org = candidates[(n // len(plan.runners)) % len(candidates)]
            if plan.town_level:
                name_zh, name_en = place.town["name_zh"] + plan.suffix_zh, f"{place.town['name_en']} {plan.suffix_en}"
                if name_zh in named:  # a second one in the town: say where
                    name_zh, name_en = f"{name_zh}（{place.area['name_zh']}）", f"{name_en} ({place.area['name_en']})"
            else:
                name_zh, name_en = place.area["name_zh"] + plan.suffix_zh, f"{place.area['name_en']} {plan.suffix_en}"
            named.add(name_zh)
            lat, lon = point_near(rng, place.area["lat"], place.area["lon"], 0.5)
            station = {
                "code": f"{plan.prefix}-{'S' if shape.scale else ''}{n + 1:03d}",
                "name_zh": name_zh,
                "name_en": name_en,
                "kind": plan.kind,
                "area": place.area["code"],
                "organisation": org.record["credit_code"],
                "address": place.street_address(rng),
                "lat": lat,
                "lon": lon,
                "capacity": rng.randint(*plan.capacity) if plan.capacity else None,
            }
            org.stations.append(station)
            stations.append(station)
    return stations


# --- workers -------------------------------------------------------------------------------------

CERTIFICATE_PREFIX = {"rehab_therapist": "KFZL", "doctor": "YS", "counsellor": "XLZX", "special_education": "TJJS"}


def availability(rng: random.Random, shift: str) -> dict[str, list[list[str]]]:
    """A weekly availability: weekdays (or three days for part-timers), some with a Saturday."""
    weekday, saturday = SHIFTS[shift]
    days = WEEKDAYS[:5] if rng.random() >= 0.15 else ("mon", "wed", "fri")
    week = {day: [list(interval) for interval in weekday] for day in days}
    if rng.random() < (0.5 if shift == "children" else 0.3):
        week["sat"] = [list(interval) for interval in saturday]
    return week


def visit_caps(profile: Profile) -> tuple[int, ...]:
    """The most visits a day a worker of the profile takes (one of these)."""
    return (10,) if profile.key == "meals" else (8, 9, 10)


def head_count_weights(orgs: list[Org]) -> list[float]:
    """Each deal's share of the workers by its profile's head count in the demo."""
    return [profile.worker_weight for _, profile in deals_of(orgs)]


def workload_weights(orgs: list[Org], recipients: list[dict], needs: list[dict]) -> list[float]:
    """Each deal's share of the workers by its workload: the workers the needs routed to it keep busy."""
    routed = route_to_deals(deals_of(orgs), recipients, needs)
    return [workers_needed(deal_needs, profile) for (_, profile), deal_needs in zip(deals_of(orgs), routed, strict=True)]


def build_workers(rng: random.Random, orgs: list[Org], spots: list[Place], shape: Shape,
                  weights: list[float]) -> list[dict]:
    """Workers of each organisation, its deals' shares of the workers by `weights`; qualifications fitting the profile."""
    blocks = deals_of(orgs)
    sizes = apportion(shape.workers, weights, minimum=1)
    workers, held = [], []
    for (org, profile), size in zip(blocks, sizes, strict=True):
        caps = visit_caps(profile)
        holders: dict[int, list[str]] = {}
        first = 0
        for code, share in profile.qualifications:
            how_many = min(size, max(1, round(share * size)))
            for j in range(how_many):
                holders.setdefault((first + j) % size, []).append(code)
            first += how_many
        for j in range(size):
            gender = "female" if rng.random() < 0.65 else "male"
            codes = holders.get(j, [])
            if org.stations and rng.random() < 0.6:
                station = rng.choice(org.stations)
                start, (lat, lon) = station["code"], (station["lat"], station["lon"])
            else:
                home = rng.choice(spots)
                start, (lat, lon) = None, point_near(rng, home.area["lat"], home.area["lon"], 1.5)
            professional = bool({"doctor", "rehab_therapist"} & set(codes))
            modes = (("ebike", 50), ("car", 40), ("bicycle", 10)) if professional else (
                ("ebike", 80), ("bicycle", 8), ("walk", 5), ("car", 7))
            qualifications = [{"code": code, "certificate_no": f"{CERTIFICATE_PREFIX[code]}{rng.randrange(10**10):010d}",
                               "expires_on": iso(random_date(rng, date(2027, 3, 1), date(2030, 12, 31)))}
                              for code in codes]
            held.extend(qualifications)
            workers.append({
                "organisation": org.record["credit_code"],
                "employee_no": f"{profile.worker_prefix}{j + 1:03d}",
                "name": fake_name(rng, gender),
                "gender": gender,
                "phone": fake_mobile(rng),
                "start_station": start,
                "start_lat": lat,
                "start_lon": lon,
                "travel_mode": weighted(rng, modes),
                "availability": availability(rng, profile.shift),
                "max_minutes_per_day": MAX_MINUTES_PER_DAY,
                "max_visits_per_day": caps[0] if len(caps) == 1 else rng.choice(caps),
                "languages": ["普通话", "镇江话"] if rng.random() < 0.7 else ["普通话"],
                "qualifications": qualifications,
            })
    expire_a_few(rng, held)
    return workers


def expire_a_few(rng: random.Random, qualifications: list[dict]) -> None:
    """Make a few certificates expire within 30 days of the reference date, and one lapse already."""
    if len(qualifications) < 4:
        return
    soon = max(3, round(len(qualifications) * 0.1))
    lapsed = max(1, round(len(qualifications) * 0.02))
    picked = rng.sample(range(len(qualifications)), soon + lapsed)
    for n, index in enumerate(picked):
        if n < soon:
            day = REFERENCE_DATE + timedelta(days=rng.randint(3, 28))
        else:
            day = REFERENCE_DATE - timedelta(days=rng.randint(10, 90))
        qualifications[index]["expires_on"] = day.isoformat()


# --- recipients and their needs ------------------------------------------------------------------


def class_counts(recipients: int) -> list[int]:
    """How many recipients of each class (the demo's mix, scaled)."""
    return apportion(recipients, [c.count for c in CLASSES])


def build_recipient(rng: random.Random, plan: ClassPlan, place: Place, respite: bool, used: set[str]) -> dict:
    """One recipient of the class in `plan`, living in `place`; `used`: ID numbers taken (this one is added)."""
    code = plan.code
    gender = "female" if rng.random() < (0.65 if code == "elderly_alone" else 0.5) else "male"
    born = random_date(rng, date(plan.born[0], 1, 1), date(plan.born[1], 12, 31))
    if code == "elderly_alone":
        subclass = "elderly_alone_80" if born.year <= PERIOD[0].year - 80 else "empty_nest"
    else:
        subclass = weighted(rng, plan.subclasses) if plan.subclasses else None
    number = id_number(weighted(rng, ID_AREAS), born, gender, rng)
    while number in used:
        number = id_number(weighted(rng, ID_AREAS), born, gender, rng)
    used.add(number)
    name = fake_name(rng, gender)
    child, old = code == "child_in_difficulty", born.year < 1960
    grade = None
    if code in ("dibao", "severe_disability"):
        grade = rng.choice((1, 1, 2))
    elif subclass == "disabled_child":
        grade = rng.choice((1, 2, 3))
    carer_chance = {"child_in_difficulty": 1.0, "dibao": 0.95, "severe_disability": 0.95, "elderly_alone": 0.6,
                    "tekun": 0.3}.get(code, 0.7)
    has_carer = respite or rng.random() < carer_chance
    carer_gender = "female" if rng.random() < 0.6 else "male"
    carer = fake_name(rng, carer_gender, name[0] if rng.random() < 0.7 else None) if has_carer else ""
    if child:
        phone = ""
    elif old:
        phone = weighted(rng, ((fake_mobile(rng), 70), (fake_landline(rng), 15), ("", 15)))
    else:
        phone = fake_mobile(rng) if rng.random() < 0.85 else ""
    valid_until = rng.choice((date(2027, 3, 31), date(2027, 6, 30), date(2027, 9, 30), date(2027, 12, 31)))
    if child:
        valid_until = min(valid_until, date(born.year + 18, born.month, min(born.day, 28)))
    lat, lon = point_near(rng, place.area["lat"], place.area["lon"], 0.8)
    return {
        "id_number": number,
        "name": name,
        "assistance_class": code,
        "subclass": subclass,
        "class_valid_until": valid_until.isoformat(),
        "disability_grade": grade,
        "lives_alone": code == "elderly_alone" or (code == "tekun" and rng.random() < 0.7),
        "area": place.area["code"],
        "address": place.address(rng),
        "lat": lat,
        "lon": lon,
        "phone": phone,
        "family_carer_name": carer,
        "family_carer_phone": fake_mobile(rng) if has_carer else "",
        "carer_gender": "any",  # set once the needs are known
        "language": "镇江话" if old and rng.random() < 0.4 else "",
        "notes": rng.choice(NOTES[code]) if rng.random() < 0.5 else "",
    }


def need_chance(recipient: dict, code: str, base: float) -> float:
    """How likely this recipient needs the type: some needs depend on the subclass or the age."""
    subclass = recipient["subclass"]
    if code == "CD03":
        return 1.0 if subclass == "disabled_child" else 0.0
    if code == "PS02" and recipient["assistance_class"] == "child_in_difficulty":
        return 0.5 if subclass in ("orphan", "unsupported") else 0.0
    if code == "CD01":  # school age
        return base if int(recipient["id_number"][6:10]) <= PERIOD[0].year - 6 else 0.0
    return base


def need_codes(rng: random.Random, recipient: dict, respite: bool) -> list[str]:
    """The service types on one recipient's need list (1 to 4), eligible for the class."""
    templates = NEED_TEMPLATES[recipient["assistance_class"]]
    chances = [(code, need_chance(recipient, code, base)) for code, base in templates]
    codes = [code for code, chance in chances if rng.random() < chance]
    if recipient["assistance_class"] == "dibao" and not set(codes) & set(HOME_SERVICES):
        codes.insert(0, HOME_SERVICES[0])
    if respite:
        codes.insert(0, "RC01")
    if not codes:
        codes = [max(chances, key=lambda c: c[1])[0]]
    return codes[:MAX_NEEDS]


def build_need(rng: random.Random, recipient: dict, code: str) -> dict:
    """One line of a need list: frequency, days, window and dates fitting the type."""
    service_type = catalogue()["types"][code]
    quantities, period, pool = FREQUENCY[code]
    quantity = rng.choice(quantities)
    window = service_type.get("window") or ["08:00", "18:00"]
    share, narrow = NARROW_WINDOWS.get(code, (0.0, None))
    if rng.random() < share:
        window = list(narrow)
    start = random_date(rng, date(2026, 1, 5), date(2026, 10, 31))
    end = None
    course_share, weeks = COURSES.get(code, (0.0, 0))
    if rng.random() < course_share:
        end = start + timedelta(weeks=weeks, days=-1)
    return {
        "recipient": recipient["id_number"],
        "service_type": code,
        "quantity": quantity,
        "period": period,
        "preferred_days": sorted(rng.sample(pool, quantity)) if period == "week" else [],
        "window_start": window[0],
        "window_end": window[1],
        "duration_min": service_type["default_duration_min"],
        "priority": "urgent" if rng.random() < 0.06 else "normal",
        "start_date": start.isoformat(),
        "end_date": iso(end),
        "source": weighted(rng, (("assessment", 75), ("application", 15), ("active_discovery", 10))),
    }


def carer_gender(rng: random.Random, codes: list[str]) -> str:
    """Personal care (bathing, respite) is often asked of a carer of the same gender."""
    if {"LC03", "RC01"} & set(codes):
        return weighted(rng, (("same", 60), ("female", 20), ("any", 20)))
    return "female" if rng.random() < 0.05 else "any"


def route(recipient: dict, code: str) -> str:
    """The profile whose contract a need is meant for: the first in ROUTING_ORDER that offers and serves it."""
    for key in ROUTING_ORDER:
        profile = PROFILE_BY_KEY[key]
        if code in profile.lines and recipient["assistance_class"] in profile.eligible:
            return key
    raise ValueError(f"no demo contract offers {code} to {recipient['assistance_class']}")


def route_to_deals(deals: list[tuple[Org, Profile]], recipients: list[dict], needs: list[dict]) -> list[list[dict]]:
    """The needs meant for each deal: routed to a profile, then shared among its organisations by recipient."""
    by_profile: dict[str, list[int]] = {}
    for index, (_, profile) in enumerate(deals):
        by_profile.setdefault(profile.key, []).append(index)
    ordinal = {r["id_number"]: n for n, r in enumerate(recipients)}
    classes = {r["id_number"]: r for r in recipients}
    routed: list[list[dict]] = [[] for _ in deals]
    for need in needs:
        candidates = by_profile[route(classes[need["recipient"]], need["service_type"])]
        routed[candidates[ordinal[need["recipient"]] % len(candidates)]].append(need)
    return routed


def build_recipients(rng: random.Random, spots: list[Place], shape: Shape,
                     avoid: frozenset[str] = frozenset()) -> tuple[list[dict], list[dict]]:
    """Recipients of every class with their need lists; `avoid`: ID numbers already taken."""
    used = set(avoid)
    recipients, needs = [], []
    for plan, count in zip(CLASSES, class_counts(shape.recipients), strict=True):
        respite_count = min(count, round(RESPITE_SHARE.get(plan.code, 0) * shape.recipients / DEMO_RECIPIENTS))
        respite = set(rng.sample(range(count), respite_count))
        for n in range(count):
            recipient = build_recipient(rng, plan, rng.choice(spots), n in respite, used)
            codes = need_codes(rng, recipient, n in respite)
            recipient["carer_gender"] = carer_gender(rng, codes)
            recipients.append(recipient)
            needs.extend(build_need(rng, recipient, code) for code in codes)
    return recipients, needs


# --- workload staffing ---------------------------------------------------------------------------


def clock_minutes(value: str) -> int:
    """A clock time "HH:MM" as minutes from midnight."""
    hours, minutes = value.split(":")
    return int(hours) * 60 + int(minutes)


def working_minutes(shift: str) -> int:
    """A worker's working minutes on a weekday of the shift (its intervals, at most the longest working day)."""
    weekday, _ = SHIFTS[shift]
    return min(MAX_MINUTES_PER_DAY, sum(clock_minutes(b) - clock_minutes(a) for a, b in weekday))


def weekday_deliveries(need: dict, on: date = REFERENCE_DATE) -> float:
    """Deliveries of a need on an average weekday (Monday to Friday) around `on`; none once it has ended."""
    ended = need["end_date"] is not None and date.fromisoformat(need["end_date"]) < on
    if ended or date.fromisoformat(need["start_date"]) > on:
        return 0.0
    if need["period"] == "week":
        return sum(1 for day in need["preferred_days"] if day <= 5) / 5
    return need["quantity"] * 12 / 52 / 5


def workers_needed(needs: list[dict], profile: Profile) -> float:
    """Workers a deal's needs keep busy on an average weekday, with UTILISATION slack.

    The most of three lower bounds: the visits' minutes (with TRAVEL_ALLOWANCE_MIN each) against a worker's
    working minutes; the minutes that must fall inside each window against the window (ten lunches between
    10:30 and 12:30 need more hands than their minutes over the day say); the visits against the cap a day.
    """
    working = working_minutes(profile.shift)
    minutes: Counter[tuple[int, int]] = Counter()  # window -> minutes of the visits that must start in it
    visits = 0.0
    for need in needs:
        deliveries = weekday_deliveries(need)
        visits += deliveries
        window = (clock_minutes(need["window_start"]), clock_minutes(need["window_end"]))
        minutes[window] += deliveries * (need["duration_min"] + TRAVEL_ALLOWANCE_MIN)
    by_window = max((sum(m for (a, b), m in minutes.items() if start <= a and b <= end) / min(end - start, working)
                     for start, end in minutes), default=0.0)
    by_visits = visits / (sum(visit_caps(profile)) / len(visit_caps(profile)))
    return max(sum(minutes.values()) / working, by_window, by_visits) / UTILISATION


# --- contracts -----------------------------------------------------------------------------------

BUDGET_UNIT = 100_000  # budgets in whole 1,000 CNY
FUNDING_UNIT = 10_000  # charity and own funds in whole 100 CNY


def budgets(values: list[int], target: int) -> list[int]:
    """Budgets that hold each contract's lines and together make up `target` (when the lines leave room)."""
    floors = [math.ceil(v / BUDGET_UNIT) * BUDGET_UNIT for v in values]
    total = sum(values)
    if not total or sum(floors) >= target:
        return floors
    shares = [max(f, target * v // total // BUDGET_UNIT * BUDGET_UNIT) for f, v in zip(floors, values, strict=True)]
    largest = max(range(len(shares)), key=lambda i: shares[i])
    shares[largest] += max(0, target - sum(shares))
    return shares


def fundings(rng: random.Random, budget: int, organisation: dict) -> list[dict]:
    """Government, charity and the organisation's own money, adding up exactly to the budget."""
    charity = round(budget * rng.choice((0.05, 0.1, 0.15)) / FUNDING_UNIT) * FUNDING_UNIT
    own = round(budget * rng.choice((0.05, 0.08, 0.1)) / FUNDING_UNIT) * FUNDING_UNIT
    parts = [("government", GOVERNMENT_FUNDER, budget - charity - own),
             ("charity", rng.choice(CHARITY_FUNDERS), charity),
             ("organisation", organisation["name_zh"], own)]
    return [{"source": s, "funder": f, "amount_fen": a} for s, f, a in parts if a > 0]


def build_contracts(rng: random.Random, orgs: list[Org], recipients: list[dict], needs: list[dict],
                    shape: Shape) -> list[dict]:
    """One contract per organisation and profile for 2026, its lines sized to the needs meant for it."""
    deals = deals_of(orgs)
    demand: list[Counter[str]] = [Counter() for _ in deals]
    for deal, deal_needs in zip(demand, route_to_deals(deals, recipients, needs), strict=True):
        for need in deal_needs:
            deal[need["service_type"]] += need_demand(need)
    types = catalogue()["types"]
    all_lines = []
    for (_, profile), wanted in zip(deals, demand, strict=True):
        lines = []
        for code in profile.lines:
            price = round(types[code]["reference_price_fen"] * rng.choice((0.9, 0.95, 1.0, 1.05, 1.1)) / 100) * 100
            quantity = max(10, math.ceil(wanted.get(code, 0) * 1.05 / 10) * 10)
            lines.append({"service_type": code, "unit_price_fen": price, "contracted_quantity": quantity})
        all_lines.append(lines)
    values = [sum(li["unit_price_fen"] * li["contracted_quantity"] for li in lines) for lines in all_lines]
    towns = [DISTRICT["code"] + t[0] for t in TOWNS]
    contracts = []
    for n, ((org, profile), lines, budget) in enumerate(zip(deals, all_lines, budgets(values, shape.budget_fen),
                                                            strict=True)):
        name_zh, name_en = profile.contract_zh, profile.contract_en
        if shape.scale:
            name_zh, name_en = f"{name_zh}（{org.record['short_name']}）", f"{name_en} ({org.record['name_en']})"
        contracts.append({
            "code": f"ZJXQ-2026-{'S' if shape.scale else ''}{n + 1:0{3 if shape.scale else 2}d}",
            "name_zh": name_zh,
            "name_en": name_en,
            "organisation": org.record["credit_code"],
            "start_date": PERIOD[0].isoformat(),
            "end_date": PERIOD[1].isoformat(),
            "budget_fen": budget,
            "fundings": fundings(rng, budget, org.record),
            "lines": lines,
            "areas": towns,
            "eligible_classes": list(profile.eligible),
            "status": "active",
        })
    return contracts


# --- the whole district --------------------------------------------------------------------------


def build_district(seed: int = DEMO_SEED, shape: Shape = Shape(), avoid: frozenset[str] = frozenset()) -> dict:
    """A district of the given shape as plain data, one list per part; the same for the same seed."""
    rng = random.Random(seed)
    orgs = build_organisations(rng, shape)
    areas = build_areas()
    spots = places(areas)
    stations = build_stations(rng, orgs, spots, shape)
    if shape.staffing == "workload":  # the workers follow the needs: those are drawn first
        recipients, needs = build_recipients(rng, spots, shape, avoid)
        workers = build_workers(rng, orgs, spots, shape, workload_weights(orgs, recipients, needs))
    else:
        workers = build_workers(rng, orgs, spots, shape, head_count_weights(orgs))
        recipients, needs = build_recipients(rng, spots, shape, avoid)
    contracts = build_contracts(rng, orgs, recipients, needs, shape)
    return {
        "areas": areas,
        "organisations": [org.record for org in orgs],
        "stations": stations,
        "contracts": contracts,
        "workers": workers,
        "recipients": recipients,
        "needs": needs,
    }


def build_demo(seed: int = DEMO_SEED) -> dict[str, list[dict]]:
    """The whole demo district as plain data, the same for the same seed."""
    return build_district(seed, Shape())


# --- checking a built district against the registry's rules ----------------------------------------


def _duplicates(keys: Iterable) -> list:
    return [key for key, n in Counter(keys).items() if n > 1]


def district_problems(data: dict[str, list[dict]], box: rules.BoundingBox) -> list[str]:
    """Every registry rule a built district breaks, one message per record (empty when all are valid)."""
    cat = catalogue()
    problems: list[str] = []

    def check(label: str, *errors: rules.Errors) -> None:
        merged = rules.merge(*errors)
        if merged:
            problems.append(f"{label}: {merged}")

    for area in data["areas"]:
        check(f"area {area['code']}", rules.coordinates_problems(area["lat"], area["lon"], box))
    for org in data["organisations"]:
        problem = credit_code_problem(org["credit_code"])
        check(f"organisation {org['credit_code']}", {"credit_code": [problem]} if problem else {},
              rules.phone_problems("contact_phone", org["contact_phone"]))
    for station in data["stations"]:
        check(f"station {station['code']}", rules.coordinates_problems(station["lat"], station["lon"], box))
    for contract in data["contracts"]:
        unknown = [li["service_type"] for li in contract["lines"] if li["service_type"] not in cat["types"]]
        check(f"contract {contract['code']}",
              rules.funding_problems(contract["budget_fen"], contract["fundings"], contract["lines"]),
              rules.period_problems(date.fromisoformat(contract["start_date"]), date.fromisoformat(contract["end_date"])),
              {"lines": [f"Unknown service types {unknown}."]} if unknown else {})
    for worker in data["workers"]:
        check(f"worker {worker['employee_no']} of {worker['organisation']}",
              rules.phone_problems("phone", worker["phone"], mobile_only=True),
              rules.availability_problems(worker["availability"]),
              rules.coordinates_problems(worker["start_lat"], worker["start_lon"], box, prefix="start_"))
    classes = {}
    for recipient in data["recipients"]:
        assistance_class = cat["classes"][recipient["assistance_class"]]
        classes[recipient["id_number"]] = assistance_class
        subclass = recipient["subclass"]
        check(f"recipient {mask_id_number(recipient['id_number'])}",
              rules.id_number_problems(recipient["id_number"]),
              rules.phone_problems("phone", recipient["phone"]),
              rules.phone_problems("family_carer_phone", recipient["family_carer_phone"]),
              rules.coordinates_problems(recipient["lat"], recipient["lon"], box),
              {"subclass": [f"Not a subclass of {assistance_class['code']}."]}
              if subclass and subclass not in {s[0] for s in assistance_class["subclasses"]} else {})
    for need in data["needs"]:
        if need["recipient"] not in classes or need["service_type"] not in cat["types"]:
            problems.append(f"need {need['service_type']} of {mask_id_number(need['recipient'])}: unknown reference")
            continue
        service_type = cat["types"][need["service_type"]]
        eligible = service_type["category"] in classes[need["recipient"]]["categories"]
        end = date.fromisoformat(need["end_date"]) if need["end_date"] else None
        check(f"need {need['service_type']} of {mask_id_number(need['recipient'])}",
              {} if eligible else {"service_type": ["The recipient's class may not receive it."]},
              rules.window_problems(time.fromisoformat(need["window_start"]), time.fromisoformat(need["window_end"]),
                                    need["duration_min"]),
              rules.period_problems(date.fromisoformat(need["start_date"]), end),
              rules.need_frequency_problems(need["quantity"], need["period"], need["preferred_days"]))
    areas = {a["code"] for a in data["areas"]}
    organisations = {o["credit_code"] for o in data["organisations"]}
    stations = {s["code"] for s in data["stations"]}
    for part, refers in (("stations", lambda s: {s["area"]} <= areas and s["organisation"] in organisations),
                         ("contracts", lambda c: set(c["areas"]) <= areas and c["organisation"] in organisations),
                         ("workers", lambda w: w["organisation"] in organisations
                          and w["start_station"] in stations | {None}),
                         ("recipients", lambda r: r["area"] in areas)):
        if dangling := [row for row in data[part] if not refers(row)]:
            problems.append(f"{part}: {len(dangling)} refer to unknown areas, organisations or stations")
    for part, key in (("areas", lambda a: a["code"]), ("organisations", lambda o: o["credit_code"]),
                      ("stations", lambda s: s["code"]), ("contracts", lambda c: c["code"]),
                      ("workers", lambda w: (w["organisation"], w["employee_no"])),
                      ("recipients", lambda r: r["id_number"]),
                      ("needs", lambda n: (n["recipient"], n["service_type"]))):
        if duplicated := _duplicates(key(row) for row in data[part]):
            problems.append(f"{part}: {len(duplicated)} duplicate keys, e.g. {duplicated[0]}")
    return problems
