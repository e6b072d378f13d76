"""Registry use cases: list, get, create and update areas, stations, organisations, contracts,
workers, recipients and needs — scoped to the caller, validated, audited, one transaction each.

Nothing here is ever deleted: deactivate (active = false) or change the status instead.
"""

from __future__ import annotations

from datetime import time
from typing import Any

from flask import current_app
from sqlalchemy import exists, false, func, or_, select
from sqlalchemy.orm import selectinload

from servicehub import crypto
from servicehub.auth.permissions import Principal, Role
from servicehub.auth.reads import record_read
from servicehub.catalog.models import AssistanceClass, Qualification, ServiceCategory, ServiceType
from servicehub.database import paginate
from servicehub.errors import N_, Conflict, NotFound, ValidationFailed
from servicehub.extensions import db
from servicehub.registry import phones, rules, scope
from servicehub.registry.identifiers import (
    age_in_years,
    credit_code_problem,
    id_number_birth_date,
    id_number_gender,
    mask_id_number,
)
from servicehub.registry.models import (
    Area,
    AreaLevel,
    Billing,
    Contract,
    ContractFunding,
    ContractLine,
    Need,
    NeedStatus,
    Organisation,
    OrganisationStatus,
    Recipient,
    RecipientStatus,
    Station,
    Worker,
    WorkerQualification,
)
from servicehub.timeutil import district_today

DEFAULT_WINDOW = (time(8, 0), time(18, 0))


# --- shared helpers -------------------------------------------------------------------------


def district_box() -> rules.BoundingBox:
    """The configured district bounding box (SERVICEHUB_DISTRICT_BBOX)."""
    return rules.BoundingBox.parse(current_app.config["SERVICEHUB_DISTRICT_BBOX"])


def _data_key() -> bytes:
    return current_app.config["SERVICEHUB_DATA_KEY"]


# --- phones: encrypted at rest, found by a keyed hash (registry.phones) -----------------------------------------


def phone_lookup_hash(value: str | None) -> str | None:
    """The keyed hash a phone number is found by (None for no number)."""
    return phones.lookup_hash(_data_key(), value)


def phone_in_clear(row, name: str = "phone") -> str:
    """The phone `name` of a recipient, worker or application in clear ('' when there is none)."""
    return phones.reveal(_data_key(), row, name)


def may_see_phones(principal: Principal) -> bool:
    """Phones in full: everyone who works with the people; an auditor checks records and sees them masked."""
    return principal.role != Role.AUDITOR


def phone_shown(principal: Principal, row, name: str = "phone") -> str:
    """The phone `name` of `row` as this caller may see it: in full or masked."""
    return phone_in_clear(row, name) if may_see_phones(principal) else getattr(row, f"{name}_masked")


def phone_matches(principal: Principal, text: str, *hash_columns) -> list:
    """Conditions finding `text` as a phone number in these hash columns; none for a caller who sees phones
    masked (a search would tell them whose a number is) or text that is no number."""
    number = phone_lookup_hash(text) if may_see_phones(principal) else None
    return [column == number for column in hash_columns] if number else []


def sealed_phones(values: dict, names: tuple[str, ...], current=None) -> dict:
    """`values` with each phone of `names` it holds replaced by its columns (encrypted, hash, masked); a phone
    that `current` already holds is left as it is (a new ciphertext would log a change that is none)."""
    sealed = {k: v for k, v in values.items() if k not in names}
    for name in names:
        if name in values and (current is None or phone_in_clear(current, name) != (values[name] or "").strip()):
            sealed.update(phones.seal(_data_key(), name, values[name]))
    return sealed


def _fail_if(errors: rules.Errors, message: str) -> None:
    if errors:
        raise ValidationFailed(message, errors)


def _list(model, stmt, sort: str, columns: dict[str, Any], page: int, page_size: int):
    """One page of `stmt` ordered by `sort` ('name' or '-name', a key of `columns`), ties broken by id."""
    column = columns[sort.lstrip("-")]
    ordered = stmt.order_by(column.desc() if sort.startswith("-") else column.asc(), model.id)
    return paginate(db.session, ordered, page, page_size)


def _get_visible(model, object_id: int, visible, label: str):
    row = db.session.scalars(select(model).where(model.id == object_id, visible)).one_or_none()
    if row is None:
        raise NotFound(f"No {label} with id {object_id}.")
    return row


def _area(code: str, field: str = "area", levels: tuple[str, ...] = (AreaLevel.TOWN, AreaLevel.COMMUNITY)) -> Area:
    area = db.session.scalars(select(Area).where(Area.code == code)).one_or_none()
    if area is None or not area.active:
        raise ValidationFailed(N_("No active area with code '%(code)s'.", code=code), {field: [f"Unknown area {code!r}."]})
    if area.level not in levels:
        raise ValidationFailed(
            f"Area {code} is a {area.level}.", {field: [f"Expected a {' or '.join(levels)}, not a {area.level}."]}
        )
    return area


def _organisation(organisation_id: int, field: str = "organisation_id") -> Organisation:
    organisation = db.session.get(Organisation, organisation_id)
    if organisation is None:
        raise ValidationFailed(N_("No organisation with id %(id)s.", id=organisation_id), {field: ["Unknown organisation."]})
    if organisation.status != OrganisationStatus.ACTIVE:
        raise ValidationFailed(f"Organisation {organisation_id} is {organisation.status}.", {field: ["Not active."]})
    return organisation


def _service_type(code: str, field: str = "service_type") -> ServiceType:
    service_type = db.session.scalars(select(ServiceType).where(ServiceType.code == code)).one_or_none()
    if service_type is None or not service_type.active:
        raise ValidationFailed(N_("Service type %(code)s is not offered.", code=code), {field: [f"{code} is not an active service type."]})
    return service_type


def _apply(row, changes: dict, names: tuple[str, ...]) -> None:
    for name in names:
        if name in changes:
            setattr(row, name, changes[name])


def _committed(row):
    db.session.commit()
    return row


def _like(column, text: str):
    return column.ilike(f"%{text.replace('%', '').replace('_', '')}%")


# --- areas ----------------------------------------------------------------------------------

PARENT_LEVEL = {AreaLevel.TOWN: AreaLevel.DISTRICT, AreaLevel.COMMUNITY: AreaLevel.TOWN}
CODE_LENGTH = {AreaLevel.DISTRICT: 6, AreaLevel.TOWN: 9, AreaLevel.COMMUNITY: 12}


def list_areas(principal: Principal, *, level=None, parent=None, active=None, q=None, sort="code", page=1, page_size=50):
    """Areas, filtered by level, parent code, active flag and name."""
    stmt = select(Area).options(selectinload(Area.parent))
    if level:
        stmt = stmt.where(Area.level == level)
    if parent:
        stmt = stmt.where(Area.parent_id == select(Area.id).where(Area.code == parent).scalar_subquery())
    if active is not None:
        stmt = stmt.where(Area.active.is_(active))
    if q:
        stmt = stmt.where(or_(_like(Area.name_zh, q), _like(Area.name_en, q), Area.code.startswith(q)))
    return _list(Area, stmt, sort, {"code": Area.code, "name": Area.name_zh}, page, page_size)


def get_area(principal: Principal, area_id: int) -> Area:
    """One area."""
    return _get_visible(Area, area_id, Area.id.isnot(None), "area")


def create_area(principal: Principal, data: dict) -> Area:
    """Add a town or community (district level only); its code extends its parent's."""
    scope.require_district_level(principal)
    level = data["level"]
    errors = rules.coordinates_problems(data["lat"], data["lon"], district_box())
    if len(data["code"]) != CODE_LENGTH[level]:
        errors = rules.merge(errors, {"code": [f"A {level} code has {CODE_LENGTH[level]} digits."]})
    parent = None
    if level == AreaLevel.DISTRICT:
        if data.get("parent"):
            errors = rules.merge(errors, {"parent": ["A district has no parent."]})
    elif not data.get("parent"):
        errors = rules.merge(errors, {"parent": [f"A {level} needs its parent's code."]})
    else:
        parent = db.session.scalars(select(Area).where(Area.code == data["parent"])).one_or_none()
        if parent is None or parent.level != PARENT_LEVEL[level]:
            errors = rules.merge(errors, {"parent": [f"The parent of a {level} is a {PARENT_LEVEL[level]}."]})
        elif not data["code"].startswith(parent.code):
            errors = rules.merge(errors, {"code": [f"The code must start with the parent's code {parent.code}."]})
    _fail_if(errors, "The area is not valid.")
    if db.session.scalars(select(Area.id).where(Area.code == data["code"])).first():
        raise Conflict(N_("Area code %(code)s exists.", code=data["code"]), {"code": ["Already used."]})
    area = Area(code=data["code"], name_zh=data["name_zh"], name_en=data["name_en"], level=level,
                parent_id=parent.id if parent else None, centroid_lat=data["lat"], centroid_lon=data["lon"])
    db.session.add(area)
    db.session.commit()
    return area


def update_area(principal: Principal, area_id: int, changes: dict) -> Area:
    """Rename, move the centroid, or (de)activate an area."""
    scope.require_district_level(principal)
    area = get_area(principal, area_id)
    lat, lon = changes.get("lat", area.centroid_lat), changes.get("lon", area.centroid_lon)
    _fail_if(rules.coordinates_problems(lat, lon, district_box()), "The area is not valid.")
    _apply(area, changes, ("name_zh", "name_en", "active"))
    area.centroid_lat, area.centroid_lon = lat, lon
    db.session.commit()
    return area


def list_towns() -> list[Area]:
    """The district's active towns and streets (镇/街道), by code."""
    return list(
        db.session.scalars(select(Area).where(Area.level == AreaLevel.TOWN, Area.active.is_(True)).order_by(Area.code))
    )


# --- stations -------------------------------------------------------------------------------


def list_stations(principal: Principal, *, kind=None, town=None, organisation_id=None, active=None, q=None,
                  sort="code", page=1, page_size=50):
    """Stations, filtered by kind, town, operating organisation and name."""
    stmt = select(Station).options(selectinload(Station.area))
    if kind:
        stmt = stmt.where(Station.kind == kind)
    if town:
        town_ids = select(Area.id).where(or_(Area.code == town, Area.code.startswith(town)))
        stmt = stmt.where(Station.area_id.in_(town_ids))
    if organisation_id:
        stmt = stmt.where(Station.organisation_id == organisation_id)
    if active is not None:
        stmt = stmt.where(Station.active.is_(active))
    if q:
        stmt = stmt.where(or_(_like(Station.name_zh, q), _like(Station.name_en, q)))
    return _list(Station, stmt, sort, {"code": Station.code, "name": Station.name_zh, "kind": Station.kind}, page, page_size)


def get_station(principal: Principal, station_id: int) -> Station:
    """One station."""
    return _get_visible(Station, station_id, Station.id.isnot(None), "station")


def _station_values(data: dict, current: Station | None = None) -> dict:
    values = {k: v for k, v in data.items() if k not in ("area",)}
    lat = data.get("lat", current.lat if current else None)
    lon = data.get("lon", current.lon if current else None)
    _fail_if(rules.coordinates_problems(lat, lon, district_box()), "The station is not valid.")
    if "area" in data:
        values["area_id"] = _area(data["area"]).id
    if data.get("organisation_id"):
        _organisation(data["organisation_id"])
    return values


def add_station(principal: Principal, data: dict) -> Station:
    """Validate and add a station to the session, without committing (district level only)."""
    scope.require_district_level(principal)
    values = _station_values(data)
    if db.session.scalars(select(Station.id).where(Station.code == data["code"])).first():
        raise Conflict(N_("Station code %(code)s exists.", code=data["code"]), {"code": ["Already used."]})
    station = Station(**values)
    db.session.add(station)
    db.session.flush()
    return station


def create_station(principal: Principal, data: dict) -> Station:
    """Add a station (district level only)."""
    return _committed(add_station(principal, data))


def update_station(principal: Principal, station_id: int, changes: dict) -> Station:
    """Change or (de)activate a station."""
    scope.require_district_level(principal)
    station = get_station(principal, station_id)
    for name, value in _station_values(changes, station).items():
        setattr(station, name, value)
    db.session.commit()
    return station


# --- organisations --------------------------------------------------------------------------


def list_organisations(principal: Principal, *, status=None, q=None, sort="name", page=1, page_size=50):
    """Organisations the caller may see (a provider: its own)."""
    stmt = select(Organisation).where(scope.organisations_visible(principal))
    if status:
        stmt = stmt.where(Organisation.status == status)
    if q:
        stmt = stmt.where(or_(_like(Organisation.name_zh, q), _like(Organisation.short_name, q),
                              Organisation.credit_code == q.upper()))
    return _list(Organisation, stmt, sort, {"name": Organisation.name_zh, "credit_code": Organisation.credit_code}, page, page_size)


def get_organisation(principal: Principal, organisation_id: int) -> Organisation:
    """One organisation (another provider's is not found)."""
    return _get_visible(Organisation, organisation_id, scope.organisations_visible(principal), "organisation")


def _organisation_problems(data: dict) -> rules.Errors:
    errors = rules.phone_problems("contact_phone", data.get("contact_phone"))
    if "credit_code" in data and (problem := credit_code_problem(data["credit_code"])):
        errors = rules.merge(errors, {"credit_code": [problem]})
    return errors


def add_organisation(principal: Principal, data: dict) -> Organisation:
    """Validate and add an organisation to the session, without committing (district level only)."""
    scope.require_district_level(principal)
    _fail_if(_organisation_problems(data), "The organisation is not valid.")
    if db.session.scalars(select(Organisation.id).where(Organisation.credit_code == data["credit_code"])).first():
        raise Conflict(N_("An organisation with this credit code exists."), {"credit_code": ["Already registered."]})
    organisation = Organisation(**data)
    db.session.add(organisation)
    db.session.flush()
    return organisation


def create_organisation(principal: Principal, data: dict) -> Organisation:
    """Register an organisation with a valid unified social credit code (district level only)."""
    return _committed(add_organisation(principal, data))


def update_organisation(principal: Principal, organisation_id: int, changes: dict) -> Organisation:
    """Change an organisation's details or status (district level only)."""
    scope.require_district_level(principal)
    organisation = get_organisation(principal, organisation_id)
    _fail_if(_organisation_problems(changes), "The organisation is not valid.")
    _apply(organisation, changes, tuple(changes))
    db.session.commit()
    return organisation


def list_active_organisations() -> list[Organisation]:
    """Organisations that may be given work, by name."""
    return list(
        db.session.scalars(
            select(Organisation).where(Organisation.status == OrganisationStatus.ACTIVE).order_by(Organisation.name_zh)
        )
    )


def list_active_organisations_by_credit_code() -> list[Organisation]:
    """Active organisations in credit-code order (stable: the demo's first is the home-care centre)."""
    return list(
        db.session.scalars(
            select(Organisation)
            .where(Organisation.status == OrganisationStatus.ACTIVE)
            .order_by(Organisation.credit_code)
        )
    )


# --- contracts ------------------------------------------------------------------------------


def _contract_query():
    return select(Contract).options(
        selectinload(Contract.organisation),
        selectinload(Contract.fundings),
        selectinload(Contract.lines).selectinload(ContractLine.service_type),
        selectinload(Contract.areas),
    )


def list_contracts(principal: Principal, *, organisation_id=None, status=None, active_on=None, service_type=None,
                   q=None, sort="code", page=1, page_size=50):
    """Contracts the caller may see, filtered."""
    stmt = _contract_query().where(scope.contracts_visible(principal))
    if organisation_id:
        stmt = stmt.where(Contract.organisation_id == organisation_id)
    if status:
        stmt = stmt.where(Contract.status == status)
    if active_on:
        stmt = stmt.where(Contract.start_date <= active_on, Contract.end_date >= active_on)
    if service_type:
        stmt = stmt.where(
            Contract.lines.any(ContractLine.service_type_id == select(ServiceType.id).where(
                ServiceType.code == service_type).scalar_subquery())
        )
    if q:
        stmt = stmt.where(or_(_like(Contract.name_zh, q), Contract.code == q))
    columns = {"code": Contract.code, "name": Contract.name_zh, "start_date": Contract.start_date,
               "end_date": Contract.end_date, "budget_fen": Contract.budget_fen}
    items, total = _list(Contract, stmt, sort, columns, page, page_size)
    return present_contracts(items), total


def present_contracts(contracts: list[Contract]) -> list[Contract]:
    """Attach to each line what live referrals hold of it and what is left (committed, offered, remaining)."""
    from servicehub.matching.services import line_usage, remaining_units

    usage = line_usage([line.id for c in contracts for line in c.lines])
    for contract in contracts:
        for line in contract.lines:
            held = usage.get(line.id, {"committed": 0.0, "offered": 0.0})
            line.committed_units, line.offered_units = held["committed"], held["offered"]
            line.remaining_units = remaining_units(line, usage)
    return contracts


def get_contract(principal: Principal, contract_id: int) -> Contract:
    """One contract with its fundings, lines (and their use) and areas."""
    row = db.session.scalars(
        _contract_query().where(Contract.id == contract_id, scope.contracts_visible(principal))
    ).one_or_none()
    if row is None:
        raise NotFound(N_("No contract with id %(id)s.", id=contract_id))
    return present_contracts([row])[0]


def _contract_parts(data: dict, current: Contract | None) -> dict:
    """Validate and resolve a contract's fields; returns the values to set (lines, areas as rows)."""
    start = data.get("start_date", current.start_date if current else None)
    end = data.get("end_date", current.end_date if current else None)
    budget = data.get("budget_fen", current.budget_fen if current else 0)
    fundings = data.get("fundings") if "fundings" in data else [
        {"source": f.source, "funder": f.funder, "amount_fen": f.amount_fen} for f in current.fundings
    ]
    lines_in = data.get("lines")
    errors = rules.period_problems(start, end)
    resolved_lines = []
    if lines_in is not None:
        codes = [line["service_type"] for line in lines_in]
        if len(set(codes)) != len(codes):
            errors = rules.merge(errors, {"lines": ["A service type appears on two lines."]})
        for index, line in enumerate(lines_in):
            service_type = db.session.scalars(select(ServiceType).where(ServiceType.code == line["service_type"])).one()
            if not service_type.active:
                errors = rules.merge(errors, {f"lines.{index}.service_type": [f"{service_type.code} is not active."]})
            resolved_lines.append((service_type, line))
        line_values = lines_in
    else:
        line_values = [{"unit_price_fen": li.unit_price_fen, "contracted_quantity": li.contracted_quantity}
                       for li in current.lines]
    errors = rules.merge(errors, rules.funding_problems(budget, fundings, line_values))
    areas = None
    if "areas" in data:
        areas = []
        for code in data["areas"]:
            area = db.session.scalars(select(Area).where(Area.code == code)).one_or_none()
            if area is None or area.level == AreaLevel.DISTRICT and len(data["areas"]) > 1:
                errors = rules.merge(errors, {"areas": [f"Unknown or overlapping area {code!r}."]})
            else:
                areas.append(area)
    _fail_if(errors, "The contract is not valid.")
    values: dict = {k: v for k, v in data.items() if k not in ("fundings", "lines", "areas")}
    if "fundings" in data:
        values["fundings"] = [ContractFunding(**f) for f in fundings]
    if lines_in is not None:
        existing = {li.service_type_id: li for li in current.lines} if current else {}
        rows = []
        for service_type, line in resolved_lines:
            row = existing.get(service_type.id) or ContractLine(
                service_type_id=service_type.id, **default_billing(service_type.unit, service_type.evv_short_share))
            row.unit_price_fen = line["unit_price_fen"]
            row.contracted_quantity = line["contracted_quantity"]
            for term in BILLING_TERMS:
                if term in line:
                    setattr(row, term, line[term])
            rows.append(row)
        values["lines"] = rows
    if areas is not None:
        values["areas"] = areas
    return values


def add_contract(principal: Principal, data: dict) -> Contract:
    """Validate and add a contract to the session, without committing (district level only)."""
    scope.require_district_level(principal)
    _organisation(data["organisation_id"])
    if db.session.scalars(select(Contract.id).where(Contract.code == data["code"])).first():
        raise Conflict(N_("Contract code %(code)s exists.", code=data["code"]), {"code": ["Already used."]})
    contract = Contract(**_contract_parts(data, None))
    db.session.add(contract)
    db.session.flush()
    return contract


def create_contract(principal: Principal, data: dict) -> Contract:
    """Register a contract: its funding adds up to the budget, its lines are active types (district level only)."""
    return _committed(add_contract(principal, data))


BILLING_TERMS = ("billing", "billing_step_min", "min_billable_share")


def default_billing(unit: str, short_share: float) -> dict:
    """A new line's billing terms: per minute for an hourly service (as migration 0017 set them), else per visit;
    a 15-minute step; nothing paid without approval below the share of the planned length that the service type
    already calls a short visit (half for most, a fifth for a meal handed over at the door)."""
    return {"billing": Billing.MINUTE.value if unit == "hour" else Billing.VISIT.value, "billing_step_min": 15,
            "min_billable_share": short_share}


def billing_problems(terms: dict) -> dict:
    """Field errors of a line's billing terms (the schema checks them too; pages and imports come here)."""
    errors = {}
    if terms.get("billing") is not None and terms["billing"] not in {b.value for b in Billing}:
        errors["billing"] = ["Per visit or per minute."]
    step = terms.get("billing_step_min")
    if step is not None and not (isinstance(step, int) and 1 <= step <= 60):
        errors["billing_step_min"] = ["From 1 to 60 minutes."]
    share = terms.get("min_billable_share")
    if share is not None and not (isinstance(share, int | float) and 0 <= share <= 1):
        errors["min_billable_share"] = ["A share from 0 to 1."]
    return errors


def update_line_billing(principal: Principal, contract_id: int, line_id: int, terms: dict) -> ContractLine:
    """Change how one contract line pays a verified visit: per visit or per verified minute, the rounding step
    and the minimum share of the planned duration (district level only). Settlements of months not frozen yet
    follow at once; a new minimum share decides the short visits of check-outs verified from now on."""
    scope.require_district_level(principal)
    contract = get_contract(principal, contract_id)
    line = next((li for li in contract.lines if li.id == line_id), None)
    if line is None:
        raise NotFound(N_("No such line of the contract."), {"line_id": ["Unknown."]})
    _fail_if(billing_problems(terms), N_("The billing terms are not valid."))
    for term in BILLING_TERMS:
        if terms.get(term) is not None:
            setattr(line, term, terms[term])
    db.session.commit()
    return line


def update_contract(principal: Principal, contract_id: int, changes: dict) -> Contract:
    """Change a contract; lists given (fundings, lines, areas) replace the old ones whole."""
    scope.require_district_level(principal)
    contract = get_contract(principal, contract_id)
    for name, value in _contract_parts(changes, contract).items():
        setattr(contract, name, value)
    db.session.commit()
    return contract


# --- workers --------------------------------------------------------------------------------


def _worker_query():
    return select(Worker).options(
        selectinload(Worker.organisation),
        selectinload(Worker.qualifications).selectinload(WorkerQualification.qualification),
    )


def list_workers(principal: Principal, *, organisation_id=None, qualification=None, gender=None, active=None,
                 q=None, sort="employee_no", page=1, page_size=50):
    """Workers the caller may see (a provider: its own), filtered."""
    stmt = _worker_query().where(scope.workers_visible(principal))
    if organisation_id:
        stmt = stmt.where(Worker.organisation_id == organisation_id)
    if qualification:
        stmt = stmt.where(Worker.qualifications.any(WorkerQualification.qualification.has(Qualification.code == qualification)))
    if gender:
        stmt = stmt.where(Worker.gender == gender)
    if active is not None:
        stmt = stmt.where(Worker.active.is_(active))
    if q:
        stmt = stmt.where(or_(_like(Worker.name, q), Worker.employee_no == q, *phone_matches(principal, q, Worker.phone_hash)))
    items, total = _list(Worker, stmt, sort, {"name": Worker.name, "employee_no": Worker.employee_no}, page, page_size)
    return [present_worker(principal, w) for w in items], total


def get_worker(principal: Principal, worker_id: int) -> Worker:
    """One worker (another organisation's is not found)."""
    row = db.session.scalars(_worker_query().where(Worker.id == worker_id, scope.workers_visible(principal))).one_or_none()
    if row is None:
        raise NotFound(N_("No worker with id %(id)s.", id=worker_id))
    return present_worker(principal, row)


def present_worker(principal: Principal, worker: Worker) -> Worker:
    """Attach what this caller may see of the worker's phone (in full or masked)."""
    worker.phone_shown = phone_shown(principal, worker)
    return worker


def _worker_values(data: dict, current: Worker | None) -> dict:
    values = sealed_phones({k: v for k, v in data.items() if k != "qualifications"}, ("phone",), current)
    errors = rules.merge(
        rules.phone_problems("phone", data.get("phone"), mobile_only=True),
        rules.availability_problems(data.get("availability") or {}),
    )
    station_id = data.get("start_station_id", current.start_station_id if current else None)
    if station_id:
        station = db.session.get(Station, station_id)
        if station is None or not station.active:
            errors = rules.merge(errors, {"start_station_id": ["Unknown or inactive station."]})
        elif data.get("start_lat") is None and (current is None or "start_station_id" in data):
            values["start_lat"], values["start_lon"] = station.lat, station.lon
    lat = values.get("start_lat", current.start_lat if current else None)
    lon = values.get("start_lon", current.start_lon if current else None)
    errors = rules.merge(errors, rules.coordinates_problems(lat, lon, district_box(), prefix="start_"))
    _fail_if(errors, "The worker is not valid.")
    if "qualifications" in data:
        codes = [q["code"] for q in data["qualifications"]]
        if len(set(codes)) != len(codes):
            raise ValidationFailed(N_("A qualification is listed twice."), {"qualifications": ["Listed twice."]})
        by_code = {q.code: q for q in db.session.scalars(select(Qualification).where(Qualification.code.in_(codes)))}
        unknown = sorted(set(codes) - set(by_code))
        if unknown:
            raise ValidationFailed(N_("Unknown qualification."), {"qualifications": [f"Unknown qualification {unknown[0]!r}."]})
        existing = {wq.qualification_id: wq for wq in current.qualifications} if current else {}
        rows = []
        for item in data["qualifications"]:
            qualification = by_code[item["code"]]
            row = existing.get(qualification.id) or WorkerQualification(qualification_id=qualification.id)
            row.certificate_no, row.expires_on = item["certificate_no"], item["expires_on"]
            rows.append(row)
        values["qualifications"] = rows
    return values


def add_worker(principal: Principal, data: dict) -> Worker:
    """Validate and add a worker to the session, without committing (a provider: to its own organisation)."""
    organisation_id = data.get("organisation_id") or principal.organisation_id
    if organisation_id is None:
        raise ValidationFailed(N_("Which organisation?"), {"organisation_id": ["Required."]})
    scope.require_organisation(principal, organisation_id)
    _organisation(organisation_id)
    values = _worker_values({**data, "organisation_id": organisation_id}, None)
    _refuse_taken_employee_no(organisation_id, data["employee_no"])
    worker = Worker(**values)
    db.session.add(worker)
    db.session.flush()
    return worker


def create_worker(principal: Principal, data: dict) -> Worker:
    """Add a worker to an organisation (a provider: to its own)."""
    return present_worker(principal, _committed(add_worker(principal, data)))


def _refuse_taken_employee_no(organisation_id: int, employee_no: str, except_id: int | None = None) -> None:
    stmt = select(Worker.id).where(Worker.organisation_id == organisation_id, Worker.employee_no == employee_no)
    if except_id:
        stmt = stmt.where(Worker.id != except_id)
    if db.session.scalars(stmt).first():
        raise Conflict(N_("Employee number %(number)s is taken.", number=employee_no), {"employee_no": ["Already used."]})


def update_worker(principal: Principal, worker_id: int, changes: dict) -> Worker:
    """Change a worker's details, qualifications, availability or limits, or (de)activate them."""
    worker = get_worker(principal, worker_id)
    scope.require_organisation(principal, worker.organisation_id)
    if "employee_no" in changes:
        _refuse_taken_employee_no(worker.organisation_id, changes["employee_no"], worker.id)
    for name, value in _worker_values(changes, worker).items():
        setattr(worker, name, value)
    db.session.commit()
    return present_worker(principal, worker)


# --- recipients -----------------------------------------------------------------------------


def _recipient_query():
    return select(Recipient).options(
        selectinload(Recipient.assistance_class), selectinload(Recipient.area), selectinload(Recipient.town)
    )


def present_recipient(principal: Principal, recipient: Recipient) -> Recipient:
    """Attach what this caller may see of the sensitive fields (full or masked ID number, the birth date or only the
    age, and phones)."""
    if scope.may_see_id_number(principal, recipient):
        recipient.id_number_shown = crypto.decrypt(_data_key(), recipient.id_number_encrypted)
        recipient.birth_date_shown = recipient.birth_date
    else:
        recipient.id_number_shown = recipient.id_number_masked
        # The masked number keeps the area code's start and the serial; with the birth date it is one of a handful
        # of numbers the check digit tells apart. Whoever sees it masked sees the age instead.
        recipient.birth_date_shown = None
    recipient.age = age_in_years(recipient.birth_date, district_today())
    recipient.phone_shown = phone_shown(principal, recipient)
    recipient.family_carer_phone_shown = phone_shown(principal, recipient, "family_carer_phone")
    return recipient


def id_number_lookup_hash(id_number: str) -> str:
    """The keyed hash that finds a recipient by ID number."""
    return crypto.lookup_hash(_data_key(), id_number)


def list_recipients(principal: Principal, *, town=None, area=None, assistance_class=None, status=None,
                    has_unmet_need=None, id_number=None, q=None, sort="id", page=1, page_size=50):
    """Recipients the caller may see, filtered; sensitive fields as the caller may see them."""
    stmt = _recipient_query().where(scope.recipients_visible(principal))
    if town:
        stmt = stmt.where(Recipient.town_id == select(Area.id).where(Area.code == town).scalar_subquery())
    if area:
        stmt = stmt.where(Recipient.area_id == select(Area.id).where(Area.code == area).scalar_subquery())
    if assistance_class:
        stmt = stmt.where(Recipient.assistance_class.has(AssistanceClass.code == assistance_class))
    if status:
        stmt = stmt.where(Recipient.status == status)
    if has_unmet_need is not None:
        unmet = exists().where(Need.recipient_id == Recipient.id, Need.status == NeedStatus.OPEN)
        stmt = stmt.where(unmet if has_unmet_need else ~unmet)
    if id_number:
        # Only those who may see full numbers may search by them; others find nobody.
        allowed = scope.sees_every_id_number(principal)
        stmt = stmt.where(Recipient.id_number_hash == id_number_lookup_hash(id_number) if allowed else false())
    if q:
        stmt = stmt.where(or_(_like(Recipient.name, q), _like(Recipient.address, q),
                              *phone_matches(principal, q, Recipient.phone_hash, Recipient.family_carer_phone_hash)))
    if sort.lstrip("-") == "birth_date" and not scope.sees_every_id_number(principal):
        # the order would tell birth dates apart within a year of age
        raise ValidationFailed(N_("Only roles that see full ID numbers sort recipients by birth date."),
                               {"sort": ["Sort by name or id."]})
    columns = {"id": Recipient.id, "name": Recipient.name, "birth_date": Recipient.birth_date}
    items, total = _list(Recipient, stmt, sort, columns, page, page_size)
    return present_recipients(principal, items), total


def present_recipients(principal: Principal, recipients: list[Recipient]) -> list[Recipient]:
    """`present_recipient` for each; whose full ID numbers were shown goes to the audit log (one event, committed)."""
    for recipient in recipients:
        present_recipient(principal, recipient)
    shown = list(dict.fromkeys(r.id for r in recipients if scope.may_see_id_number(principal, r)))
    if shown:
        record_read("id_number_shown", "recipients", shown[0] if len(shown) == 1 else None, recipient_ids=shown)
    return recipients


def get_recipient(principal: Principal, recipient_id: int) -> Recipient:
    """One recipient the caller may see (otherwise not found), with what it may see of the sensitive fields."""
    return present_recipients(principal, [find_recipient(principal, recipient_id)])[0]


def find_recipient(principal: Principal, recipient_id: int) -> Recipient:
    """One recipient the caller may see (otherwise not found), without its sensitive fields presented."""
    row = db.session.scalars(
        _recipient_query().where(Recipient.id == recipient_id, scope.recipients_visible(principal))
    ).one_or_none()
    if row is None:
        raise NotFound(N_("No recipient with id %(id)s.", id=recipient_id))
    return row


def _assistance_class(code: str) -> AssistanceClass:
    row = db.session.scalars(select(AssistanceClass).where(AssistanceClass.code == code)).one_or_none()
    if row is None or not row.active:
        raise ValidationFailed(N_("Unknown assistance class '%(code)s'.", code=code), {"assistance_class": ["Unknown class."]})
    return row


def _recipient_values(principal: Principal, data: dict, current: Recipient | None) -> dict:
    """Validate a recipient's fields and resolve codes; returns column values to set."""
    values = sealed_phones({k: v for k, v in data.items() if k not in ("id_number", "assistance_class", "area", "gender")},
                           ("phone", "family_carer_phone"), current)
    errors = rules.merge(
        rules.phone_problems("phone", data.get("phone")),
        rules.phone_problems("family_carer_phone", data.get("family_carer_phone")),
    )
    if "id_number" in data:
        id_errors = rules.id_number_problems(data["id_number"], data.get("gender"))
        errors = rules.merge(errors, id_errors)
        if not id_errors:
            id_number = data["id_number"]
            values.update(
                id_number_encrypted=crypto.encrypt(_data_key(), id_number),
                id_number_hash=id_number_lookup_hash(id_number),
                id_number_masked=mask_id_number(id_number),
                gender=id_number_gender(id_number),
                birth_date=id_number_birth_date(id_number),
            )
    class_code = data.get("assistance_class")
    assistance_class = _assistance_class(class_code) if class_code else (current.assistance_class if current else None)
    if class_code:
        values["assistance_class_id"] = assistance_class.id
    subclass = data.get("subclass", current.subclass if current else None)
    if subclass and assistance_class and subclass not in assistance_class.subclass_codes():
        choices = ", ".join(sorted(assistance_class.subclass_codes())) or "none"
        errors = rules.merge(errors, {"subclass": [f"Not a subclass of {assistance_class.code} ({choices})."]})
    lat = data.get("lat", current.lat if current else None)
    lon = data.get("lon", current.lon if current else None)
    errors = rules.merge(errors, rules.coordinates_problems(lat, lon, district_box()))
    _fail_if(errors, "The recipient is not valid.")
    if "area" in data:
        area = _area(data["area"])
        values["area_id"], values["town_id"] = area.id, area.town_id
    town_id = values.get("town_id", current.town_id if current else None)
    scope.require_town(principal, town_id)
    return values


def _refuse_duplicate(principal: Principal, id_hash: str, except_id: int | None = None) -> None:
    """One recipient per ID number; the existing one is named only to a caller who may see it."""
    stmt = select(Recipient.id).where(Recipient.id_number_hash == id_hash)
    if except_id:
        stmt = stmt.where(Recipient.id != except_id)
    existing = db.session.scalars(stmt).first()
    if existing is None:
        return
    visible = db.session.scalars(
        select(Recipient.id).where(Recipient.id == existing, scope.recipients_visible(principal))
    ).first()
    where = f" as recipient {existing}" if visible else " (in an area you do not manage)"
    raise Conflict(f"A recipient with this ID number is already registered{where}.",
                   {"id_number": [f"Already registered{where}."]})


def add_recipient(principal: Principal, data: dict) -> Recipient:
    """Validate and add a recipient to the session, without committing; the ID number must be new."""
    values = _recipient_values(principal, data, None)
    _refuse_duplicate(principal, values["id_number_hash"])
    recipient = Recipient(**values)
    db.session.add(recipient)
    db.session.flush()
    return recipient


def create_recipient(principal: Principal, data: dict) -> Recipient:
    """Register a recipient; the ID number is checked, encrypted and must not be registered already."""
    return present_recipients(principal, [_committed(add_recipient(principal, data))])[0]


def change_recipient(principal: Principal, recipient: Recipient, changes: dict) -> Recipient:
    """Validate and apply changes to a recipient in the session, without committing (a town manager: in their
    town, to their town)."""
    scope.require_town(principal, recipient.town_id)
    values = _recipient_values(principal, changes, recipient)
    if "id_number_hash" in values:
        _refuse_duplicate(principal, values["id_number_hash"], recipient.id)
    for name, value in values.items():
        setattr(recipient, name, value)
    return recipient


def update_recipient(principal: Principal, recipient_id: int, changes: dict) -> Recipient:
    """Change a recipient's details or status (a town manager: in their town, to their town)."""
    recipient = change_recipient(principal, find_recipient(principal, recipient_id), changes)
    db.session.commit()
    return present_recipients(principal, [recipient])[0]


# --- needs ----------------------------------------------------------------------------------


def _need_query():
    return select(Need).options(
        selectinload(Need.recipient),
        selectinload(Need.service_type).selectinload(ServiceType.category),
    )


def _needs_visible(principal: Principal):
    return Need.recipient_id.in_(select(Recipient.id).where(scope.recipients_visible(principal)))


def list_needs(principal: Principal, *, recipient_id=None, town=None, service_type=None, category=None, status=None,
               priority=None, q=None, sort="id", page=1, page_size=50):
    """Needs of recipients the caller may see, filtered."""
    stmt = _need_query().where(_needs_visible(principal))
    if recipient_id:
        stmt = stmt.where(Need.recipient_id == recipient_id)
    if town:
        town_id = select(Area.id).where(Area.code == town).scalar_subquery()
        stmt = stmt.where(Need.recipient.has(Recipient.town_id == town_id))
    if service_type:
        stmt = stmt.where(Need.service_type.has(ServiceType.code == service_type))
    if category:
        stmt = stmt.where(Need.service_type.has(ServiceType.category.has(ServiceCategory.code == category)))
    if status:
        stmt = stmt.where(Need.status == status)
    if priority:
        stmt = stmt.where(Need.priority == priority)
    if q:
        stmt = stmt.where(Need.recipient.has(_like(Recipient.name, q)))
    columns = {"id": Need.id, "start_date": Need.start_date, "priority": Need.priority}
    return _list(Need, stmt, sort, columns, page, page_size)


def get_need(principal: Principal, need_id: int) -> Need:
    """One need of a recipient the caller may see."""
    row = db.session.scalars(_need_query().where(Need.id == need_id, _needs_visible(principal))).one_or_none()
    if row is None:
        raise NotFound(N_("No need with id %(id)s.", id=need_id))
    return row


def eligibility_problems(recipient: Recipient, service_type: ServiceType) -> rules.Errors:
    """A recipient's class may receive the type's category; the recipient is being served."""
    errors: rules.Errors = {}
    if service_type.category.code not in recipient.assistance_class.categories:
        errors["service_type"] = [
            f"{service_type.code} ({service_type.name_zh}) is not among the services a "
            f"{recipient.assistance_class.name_zh} recipient may receive "
            f"({', '.join(recipient.assistance_class.categories)})."
        ]
    if recipient.status != RecipientStatus.ACTIVE:
        errors["recipient_id"] = [f"The recipient is {recipient.status}."]
    return errors


def _need_values(data: dict, service_type: ServiceType, current: Need | None) -> dict:
    default_start, default_end = (service_type.window_start, service_type.window_end) if service_type.window_start else DEFAULT_WINDOW

    def pick(name, default):
        if data.get(name) is not None:
            return data[name]
        return getattr(current, name) if current else default

    values = {
        "quantity": pick("quantity", None),
        "period": pick("period", "week"),
        "preferred_days": pick("preferred_days", []),
        "window_start": pick("window_start", default_start),
        "window_end": pick("window_end", default_end),
        "duration_min": pick("duration_min", service_type.default_duration_min),
        "start_date": pick("start_date", None),
        "end_date": data.get("end_date", current.end_date if current else None),
    }
    errors = rules.merge(
        rules.window_problems(values["window_start"], values["window_end"], values["duration_min"], "window_start",
                              must_fit=service_type.delivery_mode != "centre"),
        rules.period_problems(values["start_date"], values["end_date"]),
        rules.need_frequency_problems(values["quantity"], values["period"], values["preferred_days"]),
    )
    _fail_if(errors, "The need is not valid.")
    for name in ("carers", "priority", "source", "notes", "status"):
        if name in data:
            values[name] = data[name]
    return values


def add_need(principal: Principal, data: dict) -> Need:
    """Validate and add a need to the session, without committing."""
    recipient = find_recipient(principal, data["recipient_id"])
    scope.require_town(principal, recipient.town_id)
    service_type = _service_type(data["service_type"])
    _fail_if(eligibility_problems(recipient, service_type), "The recipient cannot receive this service.")
    values = _need_values({k: v for k, v in data.items() if k not in ("recipient_id", "service_type")}, service_type, None)
    need = Need(recipient_id=recipient.id, service_type_id=service_type.id, **values)
    db.session.add(need)
    db.session.flush()
    return need


def create_need(principal: Principal, data: dict) -> Need:
    """Add a line to a recipient's need list, for a service type the recipient's class may receive."""
    return _committed(add_need(principal, data))


def update_need(principal: Principal, need_id: int, changes: dict) -> Need:
    """Change a need's frequency, days, window, duration, dates or priority; suspend, close or reopen it."""
    need = get_need(principal, need_id)
    scope.require_town(principal, need.recipient.town_id)
    if need.status == NeedStatus.CLOSED and changes.get("status") != NeedStatus.OPEN:
        raise Conflict(N_("The need is closed; reopen it first."), {"status": ["closed"]})
    for name, value in _need_values(changes, need.service_type, need).items():
        setattr(need, name, value)
    db.session.commit()
    return need


# --- for pages ------------------------------------------------------------------------------


def open_need_counts(principal: Principal, recipient_ids: list[int]) -> dict[int, int]:
    """How many needs of each recipient are open (waiting for a provider): {recipient id: count}."""
    if not recipient_ids:
        return {}
    stmt = (
        select(Need.recipient_id, func.count())
        .where(Need.recipient_id.in_(recipient_ids), Need.status == NeedStatus.OPEN,
               _needs_visible(principal))
        .group_by(Need.recipient_id)
    )
    return {recipient_id: count for recipient_id, count in db.session.execute(stmt)}


def service_types_for(recipient: Recipient) -> list[ServiceType]:
    """The active service types a recipient's assistance class may receive, in catalogue order."""
    stmt = (
        select(ServiceType)
        .options(selectinload(ServiceType.category))
        .where(ServiceType.active.is_(True),
               ServiceType.category.has(ServiceCategory.code.in_(recipient.assistance_class.categories)))
        .order_by(ServiceType.sort_order, ServiceType.code)
    )
    return list(db.session.scalars(stmt))


def recipient_areas(principal: Principal) -> list[Area]:
    """The active towns and communities the caller may register recipients in (a town manager: their town)."""
    stmt = select(Area).options(selectinload(Area.parent)).where(
        Area.active.is_(True), Area.level.in_((AreaLevel.TOWN, AreaLevel.COMMUNITY))
    )
    if principal.role == Role.MANAGER and principal.town_id is not None:
        stmt = stmt.where(or_(Area.id == principal.town_id, Area.parent_id == principal.town_id))
    return list(db.session.scalars(stmt.order_by(Area.code)))


def register_recipient(principal: Principal, data: dict) -> Recipient:
    """Register a recipient; without coordinates, the centroid of their community (or town) stands in."""
    if data.get("lat") is None and data.get("lon") is None and data.get("area"):
        area = db.session.scalars(select(Area).where(Area.code == data["area"])).one_or_none()
        if area is not None:
            data = {**data, "lat": area.centroid_lat, "lon": area.centroid_lon}
    return create_recipient(principal, data)
