"""Loading the demo district into the database, and writing bigger generated districts for load tests.

`load_demo` loads the parts built by `servicehub.registry.demo` (seed_data/demo/*.json) in dependency
order, in one transaction, idempotently: rows are found by their natural keys (area code, credit code,
station code, contract code, organisation + employee number, the ID number's lookup hash, recipient +
service type). Areas and organisations are upserted (edits to the demo files reach the database); a
station, contract, worker, recipient or need that exists already is left as it is. New rows go through
the API's input schemas and the registry's own service functions, so the demo passes the same rules
as user input.

`generate_scale_district` writes a district of the same shape but any size straight into the
database with bulk inserts (SQLAlchemy Core), for load and benchmark work.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from datetime import date, time

import marshmallow as ma
from flask import current_app
from sqlalchemy import func, insert, select

from servicehub import crypto
from servicehub.auth.audit import record_event
from servicehub.auth.models import User
from servicehub.auth.permissions import COMMAND_LINE, Principal
from servicehub.catalog.models import AssistanceClass, Qualification, ServiceType
from servicehub.database import SeedReport, upsert, utcnow
from servicehub.errors import N_, Conflict, ValidationFailed
from servicehub.extensions import db
from servicehub.registry import demo, rules, schemas, services
from servicehub.registry.identifiers import (
    id_number_birth_date,
    id_number_gender,
    mask_id_number,
)
from servicehub.registry.models import (
    Area,
    Contract,
    ContractFunding,
    ContractLine,
    Need,
    Organisation,
    Recipient,
    Station,
    Worker,
    WorkerQualification,
    contract_areas,
)

# The demo's parts, in dependency order; the reference parts are what most tests need.
PARTS = ("areas", "organisations", "stations", "contracts", "workers", "recipients", "needs")
REFERENCE_PARTS = ("areas", "organisations", "stations")


def _validated(schema: ma.Schema, item: dict, label: str) -> dict:
    """Load a demo row through the API's input schema (types converted, constraints checked)."""
    try:
        return schema.load(item)
    except ma.ValidationError as exc:
        raise ValidationFailed(f"The demo's {label} is not valid.", exc.messages) from exc


@dataclass
class DemoLoader:
    """Loads the demo district's parts in dependency order, idempotently (keyed by natural keys)."""

    report: SeedReport = field(default_factory=SeedReport)
    principal: Principal = COMMAND_LINE
    recipient_ids: dict[str, int] = field(default_factory=dict)  # ID number -> recipient id

    def load(self, data: dict[str, list[dict]]) -> None:
        """Load every part present in `data`, parents before children."""
        for part in PARTS:
            if part in data:
                getattr(self, part)(data[part])

    def _add_missing(self, kind: str, items: Iterable[dict], key: Callable[[dict], Hashable], existing: set,
                     add: Callable[[dict], object]) -> None:
        """Add the items whose key is not in `existing`; count each as created or unchanged."""
        for item in items:
            if key(item) in existing:
                self.report.add(kind, "unchanged")
                continue
            add(item)
            existing.add(key(item))
            self.report.add(kind, "created")

    def areas(self, areas: list[dict]) -> None:
        """Upsert the district, towns and communities (parents first), inside the district's box."""
        box = services.district_box()
        ids = dict(db.session.execute(select(Area.code, Area.id)).all())
        for item in areas:
            errors = rules.coordinates_problems(item["lat"], item["lon"], box)
            if item["parent"] and item["parent"] not in ids:
                errors = rules.merge(errors, {"parent": [f"Unknown parent area {item['parent']}."]})
            if errors:
                raise ValidationFailed(f"The demo's area {item['code']} is not valid.", errors)
            row, outcome = upsert(db.session, Area, {"code": item["code"]}, {
                "name_zh": item["name_zh"], "name_en": item["name_en"], "level": item["level"],
                "parent_id": ids[item["parent"]] if item["parent"] else None,
                "centroid_lat": item["lat"], "centroid_lon": item["lon"],
            })
            if outcome == "created":
                db.session.flush()
                ids[item["code"]] = row.id
            self.report.add("areas", outcome)

    def organisations(self, organisations: list[dict]) -> None:
        """Register new organisations (credit code checked); bring existing ones up to date."""
        schema = schemas.OrganisationCreateSchema()
        codes = [o["credit_code"] for o in organisations]
        existing = set(db.session.scalars(select(Organisation.credit_code).where(Organisation.credit_code.in_(codes))))
        for item in organisations:
            data = _validated(schema, item, f"organisation {item['credit_code']}")
            if item["credit_code"] in existing:
                _, outcome = upsert(db.session, Organisation, {"credit_code": item["credit_code"]},
                                    {k: v for k, v in data.items() if k != "credit_code"})
            else:
                services.add_organisation(self.principal, data)
                outcome = "created"
            self.report.add("organisations", outcome)

    def _organisation_ids(self) -> dict[str, int]:
        return dict(db.session.execute(select(Organisation.credit_code, Organisation.id)).all())

    def stations(self, stations: list[dict]) -> None:
        """Add the stations that are not there yet."""
        schema, organisations = schemas.StationCreateSchema(), self._organisation_ids()

        def add(item: dict) -> None:
            data = {k: v for k, v in item.items() if k != "organisation"}
            data["organisation_id"] = organisations[item["organisation"]] if item["organisation"] else None
            services.add_station(self.principal, _validated(schema, data, f"station {item['code']}"))

        existing = set(db.session.scalars(select(Station.code)))
        self._add_missing("stations", stations, lambda s: s["code"], existing, add)

    def contracts(self, contracts: list[dict]) -> None:
        """Add the contracts that are not there yet (fundings add up, lines within the budget)."""
        schema, organisations = schemas.ContractCreateSchema(), self._organisation_ids()

        def add(item: dict) -> None:
            data = {k: v for k, v in item.items() if k != "organisation"}
            data["organisation_id"] = organisations[item["organisation"]]
            services.add_contract(self.principal, _validated(schema, data, f"contract {item['code']}"))

        existing = set(db.session.scalars(select(Contract.code)))
        self._add_missing("contracts", contracts, lambda c: c["code"], existing, add)

    def workers(self, workers: list[dict]) -> None:
        """Add the workers that are not there yet (keyed by organisation and employee number)."""
        schema, organisations = schemas.WorkerCreateSchema(), self._organisation_ids()
        stations = dict(db.session.execute(select(Station.code, Station.id)).all())

        def add(item: dict) -> None:
            data = {k: v for k, v in item.items() if k not in ("organisation", "start_station")}
            data["organisation_id"] = organisations[item["organisation"]]
            data["start_station_id"] = stations[item["start_station"]] if item["start_station"] else None
            label = f"worker {item['employee_no']} of {item['organisation']}"
            services.add_worker(self.principal, _validated(schema, data, label))

        existing = set(db.session.execute(
            select(Organisation.credit_code, Worker.employee_no).join(Worker.organisation)).all())
        self._add_missing("workers", workers, lambda w: (w["organisation"], w["employee_no"]), existing, add)

    def recipients(self, recipients: list[dict]) -> None:
        """Add the recipients that are not there yet (found by the ID number's lookup hash)."""
        schema = schemas.RecipientCreateSchema()
        by_hash = dict(db.session.execute(select(Recipient.id_number_hash, Recipient.id)).all())
        for item in recipients:
            existing = by_hash.get(services.id_number_lookup_hash(item["id_number"]))
            if existing:
                self.recipient_ids[item["id_number"]] = existing
                self.report.add("recipients", "unchanged")
                continue
            data = _validated(schema, item, f"recipient {mask_id_number(item['id_number'])}")
            self.recipient_ids[item["id_number"]] = services.add_recipient(self.principal, data).id
            self.report.add("recipients", "created")

    def _recipient_id(self, id_number: str) -> int:
        if id_number not in self.recipient_ids:
            found = db.session.scalars(select(Recipient.id).where(
                Recipient.id_number_hash == services.id_number_lookup_hash(id_number))).one_or_none()
            if found is None:
                raise ValidationFailed(f"The demo's need refers to an unknown recipient {mask_id_number(id_number)}.")
            self.recipient_ids[id_number] = found
        return self.recipient_ids[id_number]

    def needs(self, needs: list[dict]) -> None:
        """Add the needs that are not there yet (one per recipient and service type)."""
        schema = schemas.NeedCreateSchema()

        def add(item: dict) -> None:
            data = {k: v for k, v in item.items() if k != "recipient"}
            data["recipient_id"] = self._recipient_id(item["recipient"])
            label = f"need {item['service_type']} of {mask_id_number(item['recipient'])}"
            services.add_need(self.principal, _validated(schema, data, label))

        existing = set(db.session.execute(
            select(Need.recipient_id, ServiceType.code).join(Need.service_type)).all())
        self._add_missing("needs", needs, lambda n: (self._recipient_id(n["recipient"]), n["service_type"]),
                          existing, add)


def load_demo(data: dict[str, list[dict]]) -> SeedReport:
    """Load the demo district (as built by registry.demo; any subset of its parts) in one transaction; idempotent."""
    loader = DemoLoader()
    try:
        loader.load(data)
    except Exception:
        db.session.rollback()
        raise
    db.session.commit()
    return loader.report


def link_demo_caregiver(username: str = "caregiver") -> Worker | None:
    """Link the demo caregiver account to the first worker (by employee number) of its organisation, if any; an
    account already linked to a worker of its organisation stays so (`servicehub demo day` links it to one with
    visits today)."""
    user = db.session.scalars(select(User).where(User.username == username)).one_or_none()
    if user is None or user.organisation_id is None:
        return None
    linked = db.session.get(Worker, user.worker_id) if user.worker_id is not None else None
    if linked is not None and linked.organisation_id == user.organisation_id:
        return linked
    worker = db.session.scalars(select(Worker).where(Worker.organisation_id == user.organisation_id)
                                .order_by(Worker.employee_no).limit(1)).first()
    if worker is not None and user.worker_id != worker.id:
        user.worker_id = worker.id
        db.session.commit()
    return worker


# --- the scale generator ---------------------------------------------------------------------------


def _ids(model, *key_columns) -> dict:
    """{natural key: id} of every row of a model (a tuple key for several columns)."""
    rows = db.session.execute(select(model.id, *key_columns)).all()
    return {(row[1:] if len(key_columns) > 1 else row[1]): row[0] for row in rows}


def _insert(table, rows: list[dict]) -> None:
    """Bulk-insert rows (one executemany; much faster than RETURNING ids row by row)."""
    if rows:
        db.session.execute(insert(table), rows)


def _refuse_unless_fresh(data: dict, demo_id_numbers: frozenset[str]) -> None:
    """The generator fills a database holding at most the demo district: it never mixes with real data."""
    if set(demo.catalogue()["types"]) - set(_ids(ServiceType, ServiceType.code)):
        raise ValidationFailed(N_("The service catalogue is not loaded: run `servicehub seed catalog` first."))
    key = current_app.config["SERVICEHUB_DATA_KEY"]
    demo_hashes = {crypto.lookup_hash(key, number) for number in demo_id_numbers}
    others = set(db.session.scalars(select(Recipient.id_number_hash))) - demo_hashes
    if others:
        raise Conflict(
            f"The database already holds {len(others)} recipients besides the demo district's. "
            "`servicehub demo generate` fills an empty database, or one with only the demo district: "
            "point DATABASE_URL at a fresh database (run `servicehub db upgrade` and `servicehub seed catalog`)."
        )
    taken = db.session.scalar(select(func.count()).select_from(Organisation).where(
        Organisation.credit_code.in_([o["credit_code"] for o in data["organisations"]])))
    if taken:
        raise Conflict(N_("The generated organisations exist already: this database holds an earlier scale run."))


def generate_scale_district(shape: demo.Shape, seed: int = demo.DEMO_SEED) -> dict[str, int]:
    """Write a generated district of `shape` into the database in one transaction: {part: rows written}.

    Rows come from the same pure generator as the demo and are checked by the registry's rules, then
    bulk-inserted with every column the services would fill (ID numbers encrypted, hashed and masked).
    Bulk inserts bypass the audit hook: one summary event is recorded instead.
    """
    demo_id_numbers = frozenset(r["id_number"] for r in demo.build_demo()["recipients"])
    data = demo.build_district(seed, shape, avoid=demo_id_numbers)
    _refuse_unless_fresh(data, demo_id_numbers)
    problems = demo.district_problems(data, services.district_box())
    if problems:
        raise ValidationFailed(f"The generated district breaks {len(problems)} rules, e.g. {problems[0]}")
    DemoLoader().areas(data["areas"])
    db.session.flush()
    writer = _BulkWriter()
    writer.organisations_and_stations(data["organisations"], data["stations"])
    writer.contracts(data["contracts"])
    writer.workers(data["workers"])
    writer.recipients_and_needs(data["recipients"], data["needs"])
    counts = {part: len(data[part]) for part in PARTS if part != "areas"}
    record_event(db.session, "demo_generated", "registry", None, seed=seed, **counts)
    db.session.commit()
    return counts


def _day(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None


class _BulkWriter:
    """Turns generated rows (natural keys) into table rows (ids, every column set) and bulk-inserts them."""

    def __init__(self) -> None:
        now = utcnow()
        self.stamps = {"created_at": now, "updated_at": now}
        self.key = current_app.config["SERVICEHUB_DATA_KEY"]
        self.areas = {code: (area_id, parent_id) for code, area_id, parent_id in
                      db.session.execute(select(Area.code, Area.id, Area.parent_id))}
        self.types = _ids(ServiceType, ServiceType.code)
        self.organisations: dict[str, int] = {}

    def organisations_and_stations(self, organisations: list[dict], stations: list[dict]) -> None:
        """Organisations, then the stations they run."""
        _insert(Organisation.__table__, [{**o, **self.stamps} for o in organisations])
        self.organisations = _ids(Organisation, Organisation.credit_code)
        _insert(Station.__table__, [
            {**{k: v for k, v in s.items() if k not in ("area", "organisation")},
             "area_id": self.areas[s["area"]][0], "organisation_id": self.organisations.get(s["organisation"]),
             "active": True, **self.stamps} for s in stations])

    def contracts(self, contracts: list[dict]) -> None:
        """Contracts with their fundings, lines and covered areas."""
        _insert(Contract.__table__, [
            {**{k: v for k, v in c.items() if k not in ("organisation", "fundings", "lines", "areas")},
             "organisation_id": self.organisations[c["organisation"]], "start_date": _day(c["start_date"]),
             "end_date": _day(c["end_date"]), "notes": "", **self.stamps} for c in contracts])
        ids = _ids(Contract, Contract.code)
        pairs = [(ids[c["code"]], c) for c in contracts]
        _insert(ContractFunding.__table__, [{"contract_id": cid, **f} for cid, c in pairs for f in c["fundings"]])
        terms = {code: services.default_billing(unit, share) for code, unit, share in db.session.execute(
            select(ServiceType.code, ServiceType.unit, ServiceType.evv_short_share)).all()}
        _insert(ContractLine.__table__, [
            {"contract_id": cid, "service_type_id": self.types[li["service_type"]],
             "unit_price_fen": li["unit_price_fen"], "contracted_quantity": li["contracted_quantity"],
             **terms[li["service_type"]]}  # as a line registered one by one
            for cid, c in pairs for li in c["lines"]])
        _insert(contract_areas, [{"contract_id": cid, "area_id": self.areas[code][0]}
                                 for cid, c in pairs for code in c["areas"]])

    def workers(self, workers: list[dict]) -> None:
        """Workers (starting at a station or at home) and their qualifications."""
        stations = _ids(Station, Station.code)
        _insert(Worker.__table__, [
            {**services.sealed_phones({k: v for k, v in w.items()
                                       if k not in ("organisation", "start_station", "qualifications")}, ("phone",)),
             "organisation_id": self.organisations[w["organisation"]],
             "start_station_id": stations[w["start_station"]] if w["start_station"] else None,
             "active": True, **self.stamps} for w in workers])
        ids = _ids(Worker, Worker.organisation_id, Worker.employee_no)
        qualifications = _ids(Qualification, Qualification.code)
        _insert(WorkerQualification.__table__, [
            {"worker_id": ids[(self.organisations[w["organisation"]], w["employee_no"])],
             "qualification_id": qualifications[q["code"]], "certificate_no": q["certificate_no"],
             "expires_on": _day(q["expires_on"])}
            for w in workers for q in w["qualifications"]])

    def recipients_and_needs(self, recipients: list[dict], needs: list[dict]) -> None:
        """Recipients (ID numbers and phones encrypted, hashed, masked; gender and birth date from the ID numbers),
        then their needs."""
        classes = _ids(AssistanceClass, AssistanceClass.code)
        rows = []
        for r in recipients:
            number = r["id_number"]
            area_id, town_id = self.areas[r["area"]]
            rows.append({
                **services.sealed_phones({k: v for k, v in r.items() if k not in ("id_number", "assistance_class", "area")},
                                         ("phone", "family_carer_phone")),
                "id_number_encrypted": crypto.encrypt(self.key, number),
                "id_number_hash": crypto.lookup_hash(self.key, number), "id_number_masked": mask_id_number(number),
                "gender": id_number_gender(number), "birth_date": id_number_birth_date(number),
                "assistance_class_id": classes[r["assistance_class"]], "class_valid_until": _day(r["class_valid_until"]),
                "area_id": area_id, "town_id": town_id, "status": "active", **self.stamps,
            })
        _insert(Recipient.__table__, rows)
        by_hash = _ids(Recipient, Recipient.id_number_hash)
        ids = {r["id_number"]: by_hash[row["id_number_hash"]] for r, row in zip(recipients, rows, strict=True)}
        _insert(Need.__table__, [{
            **{k: v for k, v in n.items() if k not in ("recipient", "service_type")},
            "recipient_id": ids[n["recipient"]], "service_type_id": self.types[n["service_type"]],
            "window_start": time.fromisoformat(n["window_start"]), "window_end": time.fromisoformat(n["window_end"]),
            "start_date": _day(n["start_date"]), "end_date": _day(n["end_date"]),
            "status": "open", "notes": "", **self.stamps,
        } for n in needs])
