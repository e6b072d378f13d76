"""Issue 19: every operation of the OpenAPI document, called by every kind of caller with the ids of ANOTHER
organisation, town or caregiver than its own, is refused (403/404, or answers a list with nothing of the other
party in it); writes are refused and change nothing. Pages too, for the callers confined to a town, an
organisation or a worker. What "another" reaches is the access table
(`servicehub.auth.policy`): an operation whose resource the caller reads (or writes) district-wide is only
checked not to fail. The violations are reported as one list.

Two organisations (A: the demo provider and caregiver's; B: another), two towns (大港: the town manager's;
丁卯: another) and two of A's workers (the caregiver's and a colleague): A serves one recipient in each town, B
one in 丁卯; a month of history, today's rosters published, last month frozen, cards printed, an application
filed in 丁卯.
"""

from __future__ import annotations

import hashlib
import io
import re
import uuid
import zipfile
from dataclasses import dataclass, field
from datetime import date, timedelta
from datetime import time as clock

import pytest
import sqlalchemy as sa
from sqlalchemy import select

from servicehub.auth.models import ApiToken, User
from servicehub.auth.permissions import COMMAND_LINE, Principal, Role
from servicehub.auth.policy import Action, Caller, Resource, Scope, scope_of
from servicehub.evaluation import services as evaluation
from servicehub.extensions import db
from servicehub.intake.models import MissingDocument
from servicehub.matching.models import Referral
from servicehub.registry.models import Area, Contract, Need
from servicehub.scheduling import services as scheduling
from servicehub.scheduling.models import ScheduleRun, Visit
from servicehub.visits.history import write_demo_history
from servicehub.visits.models import Alert, AlertKind, EvvException, ServiceRecord
from servicehub.visits.services import raise_alert
from tests.registry import factories as f
from tests.scheduling.fixtures import EVERY_DAY, accept_all, district_today, inline  # noqa: F401 - fixture
from tests.visits.evv import issue_cards

# The callers: demo accounts (see servicehub.auth.cli.DEMO_ACCOUNTS) and their kind.
CALLERS = {"admin": Caller.ADMIN, "manager": Caller.DISTRICT_MANAGER, "manager.dagang": Caller.TOWN_MANAGER,
           "provider": Caller.PROVIDER_ADMIN, "caregiver": Caller.CAREGIVER, "auditor": Caller.AUDITOR}

# Which resource an operation reads or writes, by the longest matching path prefix; None: public, or the
# caller's own account (no other party's data there).
RESOURCES = {
    "/api/v1/catalog": None, "/api/v1/auth": None, "/api/v1/public": None,
    "/api/v1/auth/tokens/{token_id}": Resource.USERS, "/api/v1/users": Resource.USERS,
    "/api/v1/audit-log": Resource.AUDIT_LOG, "/api/v1/service-records/verify": Resource.AUDIT_LOG,
    "/api/v1/areas": Resource.AREAS, "/api/v1/stations": Resource.AREAS, "/api/v1/calendar": Resource.AREAS,
    "/api/v1/organisations": Resource.ORGANISATIONS,
    "/api/v1/organisations/{organisation_id}/schedule-settings": Resource.SCHEDULE_SETTINGS,
    "/api/v1/contracts": Resource.CONTRACTS, "/api/v1/contracts/{contract_id}/settlement": Resource.SETTLEMENTS,
    "/api/v1/workers": Resource.WORKERS, "/api/v1/recipients": Resource.RECIPIENTS,
    "/api/v1/recipients/{recipient_id}/confirmation-cards": Resource.CARDS, "/api/v1/needs": Resource.NEEDS,
    "/api/v1/imports": Resource.IMPORTS, "/api/v1/matching": Resource.MATCHING, "/api/v1/referrals": Resource.REFERRALS,
    "/api/v1/visits": Resource.VISITS, "/api/v1/visits/{visit_id}/check-": Resource.RECORDS,
    "/api/v1/visits/{visit_id}/outcome": Resource.RECORDS, "/api/v1/visit-exceptions": Resource.DAYS_OFF,
    "/api/v1/schedule-runs": Resource.SCHEDULE_RUNS, "/api/v1/roster-versions": Resource.SCHEDULE_RUNS,
    "/api/v1/rosters": Resource.ROSTERS, "/api/v1/service-records": Resource.RECORDS,
    "/api/v1/evv-exceptions": Resource.EXCEPTIONS, "/api/v1/alerts": Resource.ALERTS,
    "/api/v1/reports": Resource.REPORTS, "/api/v1/reports/frozen": Resource.FROZEN_REPORTS,
    "/api/v1/applications": Resource.APPLICATIONS, "/api/v1/discovery": Resource.APPLICATIONS,
}
# A path parameter's kind of id (`item_id` and `run_id` by the path they are in).
ITEM_KINDS = {"areas": "area", "stations": "station", "organisations": "organisation", "contracts": "contract",
              "workers": "worker", "recipients": "recipient", "needs": "need", "matching": "matching_run",
              "schedule-runs": "schedule_run"}
PARAM_KINDS = {"token_id": "token", "user_id": "user", "referral_id": "referral", "visit_id": "visit",
               "record_id": "record", "recipient_id": "recipient", "exception_id": "exception", "alert_id": "alert",
               "frozen_id": "frozen", "contract_id": "contract", "application_id": "application",
               "document_id": "document", "worker_id": "worker", "organisation_id": "organisation",
               "need_id": "need", "town": "town_code", "town_id": "town_id", "code": "code", "day": "day"}
# Tables a refused request may still write: the audit log (reads of sensitive data are audited too), the
# caller's own token's last use, attempts and the scheduler's bookkeeping.
UNWATCHED = {"audit_log", "api_tokens", "login_attempts", "submission_attempts", "confirmation_attempts", "job_runs",
             "scheduler_lease", "users"}
DINGMAO_NAMES = ("外镇甲", "外机构乙", "丁卯申请人")


@dataclass
class World:
    """The ids of the two parties and what each caller must not see."""

    ids: dict[str, dict[str, object]] = field(default_factory=dict)  # caller -> kind -> an id of another party
    hidden: dict[str, dict[str, set]] = field(default_factory=dict)  # caller -> json key -> values not to show
    names: dict[str, tuple[str, ...]] = field(default_factory=dict)  # caller -> text not to show
    month: str = ""
    first: date | None = None
    last: date | None = None
    tokens: dict[str, dict[str, str]] = field(default_factory=dict)  # caller -> its bearer token header


def _one(stmt):
    found = db.session.scalars(stmt.limit(1)).first()
    assert found is not None, f"the walk's data has none of: {stmt}"
    return found


@pytest.fixture
def world(inline, demo, auth_headers) -> World:  # noqa: F811 - the fixture above
    """Build both parties' data (inside an app context, as the command line)."""
    app = inline
    today = district_today()
    with app.app_context():
        org_a, org_b = f.organisation_ids()[:2]
        mine = f.worker(org_a, name="本人护理员", gender="female", availability=EVERY_DAY, employee_no="A0",
                        start_lat=32.203, start_lon=119.684).id
        colleague = f.worker(org_a, name="同事护理员", gender="male", availability=EVERY_DAY, employee_no="A1",
                             start_lat=32.16, start_lon=119.53).id
        theirs = f.worker(org_b, name="他机构护理员", gender="female", availability=EVERY_DAY, employee_no="B0",
                          start_lat=32.16, start_lon=119.53).id
        start = today - timedelta(days=400)
        f.contract(org_a, start_date=start, end_date=today + timedelta(days=200), areas=[f.DAGANG, f.DINGMAO],
                   lines=[{"service_type": "LC02", "unit_price_fen": 6000, "contracted_quantity": 1000}])
        f.contract(org_b, start_date=start, end_date=today + timedelta(days=200), areas=[f.DINGMAO],
                   lines=[{"service_type": "LC05", "unit_price_fen": 3000, "contracted_quantity": 1000}])
        own = f.recipient(name="本镇对象", lat=32.205, lon=119.685, carer_gender="female")
        town_other = f.recipient(name="外镇甲", area=f.DINGMAO, lat=32.155, lon=119.52, carer_gender="male")
        org_other = f.recipient(name="外机构乙", area=f.DINGMAO, lat=32.156, lon=119.521)
        daily = {"quantity": 7, "window_start": clock(8, 30), "window_end": clock(16, 30), "duration_min": 60,
                 "start_date": today - timedelta(days=60)}
        needs = [f.need(r.id, **daily, service_type=t).id
                 for r, t in ((own, "LC02"), (town_other, "LC02"), (org_other, "LC05"))]
        accept_all(org_a, needs[:2])
        accept_all(org_b, needs[2:])
        caregiver = db.session.scalar(select(User).where(User.username == "caregiver"))
        caregiver.worker_id = mine
        db.session.commit()
        scheduling.generate_visits(COMMAND_LINE)
        assert write_demo_history(years=0.1, seed=7, target=90).written
        for organisation in (org_a, org_b):
            run = scheduling.start_run(COMMAND_LINE, organisation, today, time_limit_s=0.3)
            scheduling.publish_run(COMMAND_LINE, run.id)
        month = evaluation.previous_month(today)
        frozen = {}
        for organisation in (org_a, org_b):
            contract = db.session.scalar(select(Contract.id).where(Contract.organisation_id == organisation))
            frozen[organisation] = evaluation.freeze_contract_month(COMMAND_LINE, contract, month,
                                                                   accept_open_exceptions=True)
        issue_cards([own.id, town_other.id, org_other.id])
        dingmao = db.session.scalar(select(Area.id).where(Area.code == f.DINGMAO))
        # Make sure there is a visit of each kind today (the caregiver's, the colleague's, the other org's).
        visits = {key: _one(select(Visit).where(Visit.recipient_id == r.id, Visit.service_date == today))
                  for key, r in (("own", own), ("town", town_other), ("org", org_other))}
        if visits["own"].worker_id != mine or visits["town"].worker_id != colleague:
            pytest.fail(f"today's plan put the visits elsewhere: {[(v.recipient_id, v.worker_id) for v in visits.values()]}")
        for key, visit in visits.items():  # a missed visit in each party's inbox
            raise_alert(AlertKind.MISSED, f"walk:{key}", "missed", visit=visit)
        db.session.commit()

        def records_of(recipient):
            return _one(select(ServiceRecord.id).where(ServiceRecord.recipient_id == recipient.id))

        def exception_of(recipient_ids):
            return db.session.scalar(select(EvvException.id).join(Visit, Visit.id == EvvException.visit_id)
                                     .where(Visit.recipient_id.in_(recipient_ids)).limit(1))

        def alert_of(**where):
            return db.session.scalar(select(Alert.id).filter_by(**where).limit(1))

        users = {u.username: u.id for u in db.session.scalars(select(User))}
        rule = db.session.scalar(sa.text("select code from discovery_rules limit 1"))
        base = {"area": _one(select(Area.id).where(Area.code == f.DINGMAO)), "station": None, "code": rule or "LC01",
                "day": (today + timedelta(days=30)).isoformat(), "user": users["admin"],
                "town_code": f.DINGMAO, "town_id": dingmao}
        station = db.session.scalar(sa.text("select id from stations limit 1"))
        base["station"] = station

        def party(recipient, organisation, worker, visit, frozen_report, extra=None):
            need = _one(select(Need.id).where(Need.recipient_id == recipient.id))
            return {**base, "recipient": recipient.id, "need": need,
                    "referral": _one(select(Referral.id).where(Referral.need_id == need)),
                    "visit": visit.id, "record": records_of(recipient), "organisation": organisation,
                    "worker": worker, "contract": frozen_report.contract_id, "frozen": frozen_report.id,
                    "schedule_run": _one(select(ScheduleRun.id).where(ScheduleRun.organisation_id == organisation)),
                    "exception": exception_of([recipient.id]) or exception_of([org_other.id]) or 0,
                    "alert": alert_of(recipient_id=recipient.id) or 0, **(extra or {})}

        org_b_party = party(org_other, org_b, theirs, visits["org"], frozen[org_b])
        town_party = party(town_other, org_a, colleague, visits["town"], frozen[org_a])
        colleague_party = party(town_other, org_a, colleague, visits["town"], frozen[org_a])
        world = World(month=month, first=today - timedelta(days=36), last=today - timedelta(days=1))
        for caller in CALLERS:
            world.ids[caller] = {"town": town_party, "caregiver": colleague_party}.get(
                {"manager.dagang": "town", "caregiver": "caregiver"}.get(caller, ""), org_b_party)
        # What each scoped caller must not be shown.
        by_recipient = lambda ids: set(db.session.scalars(select(Visit.id).where(Visit.recipient_id.in_(ids))))  # noqa: E731
        world.hidden["manager.dagang"] = {"recipient_id": {town_other.id, org_other.id},
                                          "visit_id": by_recipient([town_other.id, org_other.id])}
        world.names["manager.dagang"] = DINGMAO_NAMES
        world.hidden["provider"] = {"recipient_id": {org_other.id}, "worker_id": {theirs},
                                    "organisation_id": {org_b}, "visit_id": by_recipient([org_other.id])}
        world.names["provider"] = ("外机构乙", "他机构护理员", "丁卯申请人")
        world.hidden["caregiver"] = {"recipient_id": {town_other.id, org_other.id}, "worker_id": {colleague, theirs},
                                     "organisation_id": {org_b},
                                     "visit_id": set(db.session.scalars(select(Visit.id).where(
                                         (Visit.worker_id != mine) | Visit.worker_id.is_(None))))}
        world.names["caregiver"] = ("外镇甲", "外机构乙", "同事护理员", "他机构护理员", "丁卯申请人")
    client = app.test_client()
    filed = client.post("/api/v1/applications", headers=auth_headers("manager"), json={
        "name": "丁卯申请人", "phone": "13800138001", "area": f.DINGMAO, "address": "丁卯街道1号",
        "situation": "独居老人，需要助洁", "source": "walk_in", "service_types": ["LC02"]})
    assert filed.status_code == 201, filed.get_json()
    with app.app_context():
        application = filed.get_json()["id"]
        document = db.session.scalar(select(MissingDocument.id).where(MissingDocument.application_id == application)
                                     .limit(1)) or 0
        tokens = {name: auth_headers(name) for name in CALLERS}  # every caller's token, before any snapshot
        admin_token = db.session.scalar(select(ApiToken.id).where(ApiToken.user_id == users["admin"]))
    for caller in CALLERS:
        world.ids[caller] = {**world.ids[caller], "application": application, "document": document,
                             "token": admin_token if caller != "admin" else 0}
    world.tokens = tokens
    return world


# --- the walk ------------------------------------------------------------------------------------------------


def operations(client) -> list[tuple[str, str, dict]]:
    """(method, path, operation) of every operation of the OpenAPI document."""
    document = client.get("/api/v1/openapi.json").get_json()
    return [(method.upper(), path, {**op, "parameters": [*item.get("parameters", []), *op.get("parameters", [])]})
            for path, item in document["paths"].items() for method, op in item.items()
            if method in ("get", "post", "put", "patch", "delete")]


def resource_of(path: str) -> Resource | None:
    """The resource of the longest prefix of `path` in RESOURCES (KeyError: the walk does not know it)."""
    prefix = max((p for p in RESOURCES if path.startswith(p)), key=len)
    return RESOURCES[prefix]


def kind_of(path: str, name: str) -> str:
    """The kind of id a path or query parameter names."""
    if name in ("item_id", "run_id"):
        return next(kind for segment, kind in ITEM_KINDS.items() if f"/{segment}/" in path)
    return PARAM_KINDS.get(name, "")


def request_of(method: str, path: str, op: dict, ids: dict, world: World) -> tuple[str, dict, dict | None]:
    """The URL, query and JSON body of a call of the operation with the other party's ids."""
    url, query = path, {}
    for param in op["parameters"]:
        name, where, schema = param["name"], param["in"], param.get("schema", {})
        kind = kind_of(path, name)
        if where == "path":
            url = url.replace("{" + name + "}", str(ids.get(kind, 0)))
        elif where == "query":
            if kind and kind in ids and not kind.startswith("code"):
                query[name] = ids[kind]
            elif name == "date":
                query[name] = district_today().isoformat()
            elif name == "month":
                query[name] = world.month
            elif name == "from":
                query[name] = world.first.isoformat()
            elif name == "to":
                query[name] = world.last.isoformat()
            elif name == "format":
                query[name] = "csv"
            elif param.get("required"):
                query[name] = schema.get("default", "1")
    return url, query, (body_of(method, path, ids) if method != "GET" else None)


def body_of(method: str, path: str, ids: dict) -> dict:
    """A body that is valid where it matters, so that only the scope can refuse it."""
    today = district_today().isoformat()
    bodies = {
        "POST /api/v1/recipients": {"name": "越权对象", "id_number": f.id_number(), "assistance_class": "dibao",
                                    "area": f.DINGMAO, "address": "丁卯2号", "lat": 32.15, "lon": 119.52},
        "PATCH /api/v1/recipients/{item_id}": {"notes": "越权"},
        "POST /api/v1/needs": {"recipient_id": ids["recipient"], "service_type": "LC02", "quantity": 1,
                               "start_date": today},
        "PATCH /api/v1/needs/{item_id}": {"notes": "越权"},
        "POST /api/v1/workers": {"organisation_id": ids["organisation"], "employee_no": "X9", "gender": "female",
                                 "name": "越权护理员"},
        "PATCH /api/v1/workers/{item_id}": {"name": "越权"},
        "POST /api/v1/workers/{worker_id}/absences": {"date": today, "replan": False},
        "POST /api/v1/matching/runs": {"town": f.DINGMAO},
        "POST /api/v1/referrals/accept": {"referral_ids": [ids["referral"]]},
        "POST /api/v1/referrals/offer": {"referral_ids": [ids["referral"]]},
        "POST /api/v1/visits/generate": {"organisation_id": ids["organisation"]},
        "POST /api/v1/visits/{visit_id}/move": {"worker_id": ids["worker"]},
        "POST /api/v1/visit-exceptions": {"recipient_id": ids["recipient"], "start_date": today, "end_date": today,
                                          "reason": "越权"},
        "POST /api/v1/schedule-runs": {"organisation_id": ids["organisation"], "date": today},
        "PUT /api/v1/organisations/{organisation_id}/schedule-settings": {"auto_plan": True},
        "POST /api/v1/visits/{visit_id}/check-in": {"lat": 32.155, "lon": 119.52},
        "POST /api/v1/visits/{visit_id}/check-out": {"lat": 32.155, "lon": 119.52, "confirmation_method": "signature"},
        "POST /api/v1/visits/{visit_id}/outcome": {"outcome": "missed", "reason": "not_home"},
        "POST /api/v1/service-records/{record_id}/corrections": {"reason_code": "wrong_time", "notes": "越权"},
        "POST /api/v1/evv-exceptions/{exception_id}/resolve": {"reason_code": "gps_inaccurate", "note": "越权"},
        "POST /api/v1/evv-exceptions/{exception_id}/decide": {"decision": "approve", "note": "越权"},
        "POST /api/v1/evv-exceptions/resolve": {"ids": [ids["exception"]], "reason_code": "gps_inaccurate",
                                                "note": "越权"},
        "POST /api/v1/evv-exceptions/decide": {"ids": [ids["exception"]], "decision": "approve", "note": "越权"},
        "POST /api/v1/alerts/{alert_id}/acknowledge": {"note": "越权"},
        "POST /api/v1/reports/frozen": {"contract_id": ids["contract"], "month": "2000-01"},
        "POST /api/v1/applications/{application_id}/steps": {"kind": "note", "note": "越权"},
        "POST /api/v1/applications/{application_id}/reject": {"reason": "越权"},
        "PUT /api/v1/calendar/{day}": {"kind": "holiday"},
        "POST /api/v1/applications": {"name": "越权申请人", "phone": "13800138002", "area": f.DINGMAO,
                                      "address": "丁卯3号", "situation": "越权", "source": "walk_in",
                                      "service_types": ["LC02"]},
        "PATCH /api/v1/users/{user_id}": {"display_name": "越权"},
        "PUT /api/v1/users/{user_id}/password": {"password": "a-new-password-2026"},
        "POST /api/v1/users": {"username": "intruder", "role": "admin", "password": "a-new-password-2026"},
    }
    return bodies.get(f"{method} {path}", {})


def shown(response) -> tuple[object, str]:
    """The answer's JSON (None if it is not JSON) and its text (a workbook's cells, a CSV's lines)."""
    if response.is_json:
        return response.get_json(), response.get_data(as_text=True)
    data = response.get_data()
    if data[:2] == b"PK":
        with zipfile.ZipFile(io.BytesIO(data)) as book:
            return None, " ".join(book.read(n).decode("utf-8", "replace") for n in book.namelist() if n.endswith(".xml"))
    return None, data.decode("utf-8", "replace")


def leaks(body, text: str, hidden: dict[str, set], names: tuple[str, ...]) -> list[str]:
    """What of the other party the answer shows."""
    found = [name for name in names if name in text]

    def walk(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key in hidden and isinstance(value, int) and value in hidden[key]:
                    found.append(f"{key}={value}")
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(body)
    return found


def fingerprint() -> dict[str, str]:
    """A digest of every watched table's rows."""
    digests = {}
    for table in db.metadata.sorted_tables:
        if table.name in UNWATCHED:
            continue
        rows = db.session.execute(select(table).order_by(*table.primary_key.columns)).all()
        digests[table.name] = hashlib.sha256(repr([tuple(r) for r in rows]).encode()).hexdigest()
    return digests


def call(client, method, url, query, body, headers):
    """One request (a write with an idempotency key)."""
    extra = {} if method == "GET" else {"Idempotency-Key": str(uuid.uuid4())}
    return client.open(url, method=method, query_string=query, json=body, headers={**headers, **extra})


def test_every_operation_for_every_role_with_another_partys_ids(app, client, world):
    ops = operations(client)
    unknown = [path for _m, path, _op in ops if not any(path.startswith(p) for p in RESOURCES)]
    assert not unknown, f"operations the walk does not know the resource of: {unknown}"
    violations: list[str] = []
    principals = {}
    with app.app_context():
        for username in CALLERS:
            user = db.session.scalar(select(User).where(User.username == username))
            principals[username] = Principal(user.id, username, Role(user.role), user.organisation_id, user.town_id,
                                             user.worker_id)
    # Reads first (every caller), then writes (every caller that may not write there), so that no write of
    # one caller changes what another reads.
    for phase in ("read", "write"):
        for username, caller in CALLERS.items():
            ids, headers = world.ids[username], world.tokens[username]
            with app.app_context():
                before = fingerprint() if phase == "write" else None
            for method, path, op in ops:
                if (method == "GET") != (phase == "read") or path == "/api/v1/auth/tokens" and method == "POST":
                    continue
                resource = resource_of(path)
                action = Action.READ if method == "GET" else Action.WRITE
                reach = Scope.ALL if resource is None else scope_of(principals[username], resource, action)
                if action is Action.WRITE and (reach is Scope.ALL or resource is None):
                    continue  # allowed there (or the caller's own account): nothing of another party to refuse
                url, query, body = request_of(method, path, op, ids, world)
                response = call(client, method, url, query, body, headers)
                where = f"{caller} {method} {url} {query or ''} -> {response.status_code}"
                if response.status_code >= 500:
                    violations.append(f"{where}: server error")
                    continue
                if reach is Scope.ALL:
                    continue
                if action is Action.WRITE:
                    if response.status_code < 400:
                        violations.append(f"{where}: a write by another party was accepted")
                    continue
                has_path_id = any(p["in"] == "path" and kind_of(path, p["name"]) in ids for p in op["parameters"])
                if response.status_code < 400 and has_path_id:
                    violations.append(f"{where}: another party's {resource} was read")
                elif response.status_code < 400:
                    body_json, text = shown(response)
                    if reach is Scope.NONE and body_json not in ([], {}, None):
                        violations.append(f"{where}: answers what the caller may not read at all")
                    elif found := leaks(body_json, text, world.hidden.get(username, {}), world.names.get(username, ())):
                        violations.append(f"{where}: shows {sorted(set(found))[:6]}")
            if phase == "write":
                with app.app_context():
                    after = fingerprint()
                changed = sorted(name for name in before if before[name] != after[name])
                if changed:
                    violations.append(f"{caller}: refused writes changed {changed}")
    assert not violations, f"{len(violations)} violations:\n" + "\n".join(violations)


# --- pages ---------------------------------------------------------------------------------------------------

# The resource a page with an id in its path shows (the longest matching prefix); pages without one show lists,
# which are checked for the other party's names only.
PAGE_RESOURCES = {"/recipients/": Resource.RECIPIENTS, "/recipients/<int:recipient_id>/cards": Resource.CARDS,
                  "/needs/": Resource.NEEDS, "/organisations/": Resource.ORGANISATIONS, "/contracts/": Resource.CONTRACTS,
                  "/workers/": Resource.WORKERS, "/referrals/": Resource.REFERRALS, "/exceptions/": Resource.EXCEPTIONS,
                  "/reports/frozen/": Resource.FROZEN_REPORTS, "/intake/": Resource.APPLICATIONS}
SCOPED = ("manager.dagang", "provider", "caregiver")


def test_every_page_for_the_scoped_callers_with_another_partys_ids(app, client, world):
    """Every page (GET) as the town manager, the provider and the caregiver, with another party's ids in its
    path and its query (organisation, worker, town): a page of another party's row outside the caller's reach
    is refused, and no page shows another party's names."""
    pages = [rule for rule in app.url_map.iter_rules()
             if "GET" in rule.methods and not rule.rule.startswith(("/api/", "/static")) and "name" not in rule.arguments]
    violations = []
    with app.app_context():
        users = {u.username: u for u in db.session.scalars(select(User).where(User.username.in_(SCOPED)))}
        principals = {n: Principal(u.id, n, Role(u.role), u.organisation_id, u.town_id, u.worker_id)
                      for n, u in users.items()}
    for username in SCOPED:
        ids = world.ids[username]
        query = {"organisation_id": ids["organisation"], "worker_id": ids["worker"], "town_id": ids["town_id"],
                 "town": ids["town_code"], "recipient_id": ids["recipient"], "date": district_today().isoformat()}
        for rule in pages:
            url = rule.rule
            for name in rule.arguments:
                url = re.sub(r"<(?:[^:<>]+:)?" + name + ">", str(ids[PARAM_KINDS[name]]), url)
            response = client.get(url, query_string=query, headers=world.tokens[username])
            where = f"{CALLERS[username]} page {url} -> {response.status_code}"
            text = response.get_data(as_text=True)
            if response.status_code >= 500:
                violations.append(f"{where}: server error")
            elif response.status_code < 300 and (found := [n for n in world.names[username] if n in text]):
                violations.append(f"{where}: shows {found}")
            elif response.status_code < 300 and rule.arguments and rule.rule != "/lang/<code>":
                resource = PAGE_RESOURCES[max((p for p in PAGE_RESOURCES if rule.rule.startswith(p)), key=len)]
                if scope_of(principals[username], resource) is not Scope.ALL:
                    violations.append(f"{where}: another party's {resource} was shown")
    assert not violations, f"{len(violations)} violations:\n" + "\n".join(violations)
