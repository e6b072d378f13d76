"""Test data builders for the registry: recipients, needs, workers, contracts, communities.

They call the registry services (as the command line, an admin, unless told otherwise), so the data
is validated exactly as real input is. Call them inside an application context. Every builder takes
keyword overrides of the service's fields.
"""

from __future__ import annotations

import itertools
from datetime import date

from servicehub.auth.permissions import COMMAND_LINE, Principal
from servicehub.registry import services
from servicehub.registry.identifiers import id_number_check_digit

DISTRICT = "321191"
DAGANG = "321191001"  # the town of the demo account manager.dagang
DINGMAO = "321191002"
TOWN_CENTRES = {DAGANG: (32.205, 119.685), DINGMAO: (32.155, 119.520), "321191003": (32.170, 119.640)}

_serial = itertools.count(1)


def id_number(birth: date = date(1941, 3, 12), *, female: bool = False, area: str = DISTRICT) -> str:
    """A valid resident ID number (GB 11643 check digit) for this birth date; 500 in a row differ."""
    serial = next(_serial)
    sequence = f"{(serial * 2 + (0 if female else 1)) % 1000:03d}"
    first17 = f"{area}{birth:%Y%m%d}{sequence}"
    return first17 + id_number_check_digit(first17)


def wrong_check_digit(value: str) -> str:
    """The same ID number with a wrong check digit."""
    return value[:17] + ("0" if value[17] != "0" else "1")


def organisation_ids() -> list[int]:
    """The demo organisations' ids in credit-code order (index 0: the demo provider's organisation)."""
    return [o.id for o in services.list_active_organisations_by_credit_code()]


def community(
    town: str = DAGANG, suffix: str = "001", name_zh: str = "测试社区", name_en: str = "Test Community"
):
    """The community `<town><suffix>`, created if the demo does not have it."""
    code = town + suffix
    found, _ = services.list_areas(COMMAND_LINE, q=code, page_size=5)
    for area in found:
        if area.code == code:
            return area
    lat, lon = TOWN_CENTRES.get(town, (32.2, 119.7))
    return services.create_area(
        COMMAND_LINE,
        {
            "code": code,
            "name_zh": name_zh,
            "name_en": name_en,
            "level": "community",
            "parent": town,
            "lat": lat,
            "lon": lon,
        },
    )


def recipient(principal: Principal = COMMAND_LINE, **overrides):
    """Register a recipient (default: an older person on 低保 in 大港街道)."""
    area = overrides.get("area", DAGANG)
    lat, lon = TOWN_CENTRES.get(area[:9], (32.2, 119.7))
    data = {
        "name": "测试对象",
        "id_number": id_number(),
        "gender": None,
        "assistance_class": "dibao",
        "subclass": None,
        "class_valid_until": None,
        "disability_grade": None,
        "lives_alone": False,
        "area": area,
        "address": "测试路1号",
        "lat": lat,
        "lon": lon,
        "phone": "13800138000",
        "family_carer_name": "",
        "family_carer_phone": "",
        "carer_gender": "any",
        "language": "",
        "notes": "",
    }
    data.update(overrides)
    return services.create_recipient(principal, data)


def need(recipient_id: int, principal: Principal = COMMAND_LINE, **overrides):
    """Add a need (default: LC02 home cleaning once a week from today)."""
    data = {
        "recipient_id": recipient_id,
        "service_type": "LC02",
        "quantity": 1,
        "period": "week",
        "preferred_days": [],
        "window_start": None,
        "window_end": None,
        "duration_min": None,
        "priority": "normal",
        "start_date": date.today(),
        "end_date": None,
        "source": "assessment",
        "notes": "",
    }
    data.update(overrides)
    return services.create_need(principal, data)


def worker(organisation_id: int, principal: Principal = COMMAND_LINE, **overrides):
    """Add a worker to an organisation (default: starts at home in 大港街道, weekday mornings)."""
    data = {
        "organisation_id": organisation_id,
        "employee_no": f"E{next(_serial):04d}",
        "name": "测试护理员",
        "gender": "female",
        "phone": "",
        "start_station_id": None,
        "start_lat": 32.205,
        "start_lon": 119.685,
        "travel_mode": "ebike",
        "availability": {"mon": [["08:00", "12:00"]], "wed": [["13:30", "17:30"]]},
        "max_minutes_per_day": 480,
        "max_visits_per_day": 10,
        "languages": [],
        "qualifications": [],
    }
    data.update(overrides)
    return services.create_worker(principal, data)


def contract(organisation_id: int, principal: Principal = COMMAND_LINE, **overrides):
    """Register a contract (default: this year, ¥100,000 from government and charity, LC01 and LC02, 大港)."""
    year = date.today().year
    data = {
        "code": f"HT-{next(_serial):05d}",
        "name_zh": "居家养老服务项目",
        "name_en": "Home care project",
        "organisation_id": organisation_id,
        "start_date": date(year, 1, 1),
        "end_date": date(year, 12, 31),
        "budget_fen": 10_000_000,
        "fundings": [
            {"source": "government", "funder": "镇江新区民政局", "amount_fen": 8_000_000},
            {"source": "charity", "funder": "慈善总会", "amount_fen": 2_000_000},
        ],
        "lines": [
            {"service_type": "LC01", "unit_price_fen": 1500, "contracted_quantity": 2000},
            {"service_type": "LC02", "unit_price_fen": 6000, "contracted_quantity": 500},
        ],
        "areas": [DAGANG],
        "eligible_classes": ["dibao", "tekun"],
        "status": "active",
        "notes": "",
    }
    data.update(overrides)
    return services.create_contract(principal, data)
