"""Application use cases: filing (public, by staff, by a discovery rule), the status check, the town's work queue
and its steps, approval (at once as emergency help, documents later, or after verification) that turns an
application into a recipient with needs handed to matching, and the jobs that escalate overdue items, remind
of missing documents and run the discovery rules."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, timedelta

from flask import current_app
from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import selectinload

from servicehub.auth.audit import record_event
from servicehub.auth.permissions import Principal, Role
from servicehub.catalog.models import ServiceType
from servicehub.database import paginate, utcnow
from servicehub.errors import N_, Conflict, NotFound, PermissionDenied, RateLimited, ValidationFailed
from servicehub.extensions import db
from servicehub.intake import rules
from servicehub.intake.models import (
    OPEN_STATUSES,
    STAFF_SOURCES,
    Application,
    ApplicationStep,
    CalendarDay,
    DayKind,
    DiscoveryRule,
    MissingDocument,
    Source,
    Status,
    StepKind,
    SubmissionAttempt,
    Urgency,
)
from servicehub.registry import services as registry
from servicehub.registry.identifiers import age_in_years
from servicehub.registry.models import Area, AreaLevel, NeedSource, Priority, Recipient, RecipientStatus
from servicehub.scheduling.models import Visit, VisitStatus
from servicehub.timeutil import district_now, district_today, district_tz
from servicehub.visits.models import AlertKind
from servicehub.visits.services import raise_alert

DEFAULT_DOCUMENTS = ("身份证明 ID document", "家庭经济状况证明 Proof of the household's means",
                     "困难情况说明 Statement of the hardship")
# What each step does to an open application: the status it leaves it in (None: unchanged).
STEP_STATUS = {StepKind.CONTACTED: Status.CONTACTED, StepKind.VISITED: Status.VISITED,
               StepKind.VERIFIED: Status.VERIFIED, StepKind.CLOSED: Status.CLOSED, StepKind.NOTE: None}
CONTACT_STEPS = (StepKind.CONTACTED, StepKind.VISITED, StepKind.VERIFIED)


def _config(name: str):
    return current_app.config[name]


def _secret() -> bytes:
    return current_app.config["SECRET_KEY"].encode()


def _local_now() -> datetime:
    return district_now()


# --- filing ---------------------------------------------------------------------------------------------


def new_challenge() -> rules.Challenge:
    """A sum for the public form, signed so that checking it needs no server state."""
    return rules.new_challenge(_secret(), utcnow())


def _throttle(client: str, phone: str) -> None:
    """Slow a flood down: so many tries per address in a window, so many applications per phone a day."""
    now = utcnow()
    window = timedelta(minutes=_config("SERVICEHUB_INTAKE_WINDOW_MINUTES"))
    key = rules.client_key(_secret(), "address", client)
    db.session.execute(SubmissionAttempt.__table__.delete().where(SubmissionAttempt.at < now - timedelta(days=1)))
    tries = db.session.scalar(select(func.count()).select_from(SubmissionAttempt)
                              .where(SubmissionAttempt.key == key, SubmissionAttempt.at >= now - window))
    db.session.add(SubmissionAttempt(key=key, at=now))
    db.session.commit()  # the try counts even when the form is refused below
    minutes = _config("SERVICEHUB_INTAKE_WINDOW_MINUTES")
    if tries >= _config("SERVICEHUB_INTAKE_MAX_PER_ADDRESS"):
        raise RateLimited(N_("Too many applications from this address. Try again in %(minutes)d minutes, or call "
                             "the hotline.", minutes=minutes),
                          code="too_many_applications", headers={"Retry-After": str(minutes * 60)})
    if phone:
        today = db.session.scalar(select(func.count()).select_from(Application).where(
            Application.phone_hash == registry.phone_lookup_hash(phone),
            Application.submitted_at >= now - timedelta(days=1)))
        if today >= _config("SERVICEHUB_INTAKE_MAX_PER_PHONE"):
            raise RateLimited(N_("This phone number has applied several times today; the town will call you back."),
                              {"phone": ["Too many applications today."]}, code="too_many_applications",
                              headers={"Retry-After": str(3600)})


def submit_public(data: dict, client: str) -> Application:
    """An application from the public page: throttled per address and phone, the challenge answered, routed
    to the town of the address."""
    phone = rules.normal_phone(data.get("phone", ""))
    _throttle(client, phone)
    wrong_sum = {} if rules.challenge_passed(_secret(), data.get("challenge_token", ""), data.get("challenge_answer"),
                                             utcnow()) else {"challenge_answer": ["Wrong or expired answer; try the new sum."]}
    return _file(data, Source.PUBLIC, created_by="", client=client, problems=wrong_sum)


def register_application(principal: Principal, data: dict) -> Application:
    """An application taken by phone, at the hotline, by a grid worker or at the counter (a town manager: for
    that town)."""
    require_manager(principal)
    if data.get("source") not in {s.value for s in STAFF_SOURCES}:
        raise ValidationFailed(N_("Say where the application came from."),
                               {"source": [f"One of {', '.join(s.value for s in STAFF_SOURCES)}."]})
    return _file(data, Source(data["source"]), created_by=principal.username, principal=principal)


def file_demo_application(data: dict, source: Source) -> Application:
    """An application as if it came from `source` (the command line's demo data only: no challenge, no flood
    limit)."""
    return _file({**data, "note": "演示数据 demo"}, source, created_by="demo")


def _routing(data: dict) -> tuple[Area, Area | None]:
    """The town (and community) of the address, from the area code chosen."""
    area = db.session.scalar(select(Area).where(Area.code == data.get("area", ""), Area.active.is_(True)))
    if area is None or area.level not in (AreaLevel.TOWN, AreaLevel.COMMUNITY):
        raise ValidationFailed(N_("Choose the town or community of the address."), {"area": ["Unknown area."]})
    if area.level == AreaLevel.TOWN:
        return area, None
    return db.session.get(Area, area.parent_id), area


def _problems(data: dict, phone: str, source: Source) -> dict[str, list[str]]:
    problems = {}
    if not (data.get("name") or "").strip():
        problems["name"] = ["Who needs help?"]
    if not phone and source != Source.DISCOVERY:
        problems["phone"] = ["A mobile (11 digits) or landline number to call back."]
    if not (data.get("situation") or "").strip():
        problems["situation"] = ["Say what happened."]
    codes = data.get("service_types") or []
    known = set(db.session.scalars(select(ServiceType.code).where(ServiceType.code.in_(codes)))) if codes else set()
    if unknown := [c for c in codes if c not in known]:
        problems["service_types"] = [f"Unknown service types: {', '.join(unknown)}."]
    if not codes and not (data.get("help_text") or "").strip():
        problems["help_text"] = ["Choose a service or say what help is needed."]
    if data.get("contact_phone") and not rules.normal_phone(data["contact_phone"]):
        problems["contact_phone"] = ["Not a phone number."]
    if data.get("urgency", Urgency.NORMAL) not in {u.value for u in Urgency}:
        problems["urgency"] = ["emergency or normal."]
    return problems


def _file(data: dict, source: Source, created_by: str, client: str = "", principal: Principal | None = None,
          recipient_id: int | None = None, rule_code: str | None = None, problems: dict | None = None) -> Application:
    """File an application; `problems` already found (a wrong sum) are refused with the fields' own."""
    phone = rules.normal_phone(data.get("phone", ""))
    problems = {**_problems(data, phone, source), **(problems or {})}
    try:
        town, community = _routing(data)
    except ValidationFailed as exc:
        problems.update(exc.errors)
        town = community = None
    if problems:
        raise ValidationFailed(N_("The application is not complete."), problems)
    if principal is not None and principal.role == Role.MANAGER and principal.town_id not in (None, town.id):
        raise PermissionDenied(N_("You manage another town."), {"area": ["Not in your town."]})
    urgency = Urgency(data.get("urgency") or Urgency.NORMAL)
    submitted = _local_now()
    phones = registry.sealed_phones({"phone": phone, "contact_phone": rules.normal_phone(data.get("contact_phone", ""))},
                                    ("phone", "contact_phone"))
    application = Application(
        reference=_unused_reference(), source=source.value, urgency=urgency.value, status=Status.NEW.value,
        town_id=town.id, community_id=community.id if community else None, name=data["name"].strip(), **phones,
        address=(data.get("address") or "").strip(), situation=data["situation"].strip(),
        service_types=list(dict.fromkeys(data.get("service_types") or [])),
        help_text=(data.get("help_text") or "").strip(), contact_name=(data.get("contact_name") or "").strip(),
        recipient_id=recipient_id, rule_code=rule_code, submitted_at=submitted.astimezone(UTC),
        due_at=_deadline(submitted, urgency == Urgency.EMERGENCY, working_calendar(submitted.date())),
        client_hash=rules.client_key(_secret(), "address", client) if client else "", created_by=created_by)
    db.session.add(application)
    db.session.flush()
    _step(application, StepKind.SUBMITTED, data.get("note", ""), principal)
    record_event(db.session, "application_filed", "applications", application.id, reference=application.reference,
                 source=source.value, urgency=urgency.value, town=town.code, rule=rule_code)
    db.session.commit()
    return present_application(principal, application) if principal is not None else application


def _deadline(submitted: datetime, emergency: bool, calendar: rules.WorkingCalendar) -> datetime:
    """When the first contact is due (UTC) for an application submitted then (local time)."""
    return rules.due_at(submitted, emergency, _config("SERVICEHUB_INTAKE_EMERGENCY_HOURS"),
                        _config("SERVICEHUB_INTAKE_WORKING_DAYS"), calendar).astimezone(UTC)


def _unused_reference() -> str:
    while True:
        reference = rules.new_reference()
        if db.session.scalar(select(Application.id).where(Application.reference == reference)) is None:
            return reference


def _step(application: Application, kind: StepKind, note: str = "", principal: Principal | None = None,
          by_name: str | None = None) -> ApplicationStep:
    step = ApplicationStep(application_id=application.id, kind=kind.value, note=(note or "").strip(),
                           status_after=application.status, by_user_id=principal.user_id if principal else None,
                           by_name=by_name if by_name is not None else (principal.username if principal else ""))
    db.session.add(step)
    return step


def check_status(reference: str, phone: str) -> Application:
    """The application with this reference, if the phone number is the one it was filed with; otherwise the
    same 404 whatever was wrong (a wrong phone number reveals nothing)."""
    found = db.session.scalar(select(Application).options(selectinload(Application.steps))
                              .where(Application.reference == rules.normal_reference(reference)))
    number = registry.phone_lookup_hash(rules.normal_phone(phone))
    if found is None or number is None or number not in (found.phone_hash, found.contact_phone_hash):
        raise NotFound(N_("No application with this reference and phone number."))
    return found


# --- the work queue --------------------------------------------------------------------------------------


def require_manager(principal: Principal) -> None:
    """Applications are handled by managers (a town's, or the district's) and admins."""
    if principal.role not in (Role.MANAGER, Role.ADMIN):
        raise PermissionDenied(N_("Applications are handled by the town and district managers."))


def present_application(principal: Principal, application: Application) -> Application:
    """Attach what this caller may see of the application's phones (in full, or masked for an auditor)."""
    application.phone_shown = registry.phone_shown(principal, application)
    application.contact_phone_shown = registry.phone_shown(principal, application, "contact_phone")
    return application


def applications_visible(principal: Principal):
    """Applications the caller may see: a town manager the town's; the district and auditors all."""
    if principal.role in (Role.ADMIN, Role.AUDITOR) or (principal.role == Role.MANAGER and principal.town_id is None):
        return Application.id.is_not(None)
    if principal.role == Role.MANAGER:
        return Application.town_id == principal.town_id
    raise PermissionDenied(N_("Applications are for managers and auditors."))


def overdue_clause(now: datetime):
    """Open, nobody in touch yet, and past the deadline (`Application.is_overdue` in Python)."""
    return and_(Application.status == Status.NEW, Application.first_contact_at.is_(None), Application.due_at < now)


def list_applications(principal: Principal, *, town: str | None = None, status: str | None = None,
                      source: str | None = None, urgency: str | None = None, overdue: bool | None = None,
                      open_only: bool = False, q: str | None = None, page: int = 1, page_size: int = 50):
    """The work queue: emergencies and the earliest deadlines first, then the rest newest first."""
    stmt = select(Application).options(selectinload(Application.town), selectinload(Application.community),
                                       selectinload(Application.documents)).where(applications_visible(principal))
    if town:
        stmt = stmt.where(Application.town.has(Area.code == town))
    if status:
        stmt = stmt.where(Application.status == status)
    if open_only:
        stmt = stmt.where(Application.status.in_(OPEN_STATUSES))
    if source:
        stmt = stmt.where(Application.source == source)
    if urgency:
        stmt = stmt.where(Application.urgency == urgency)
    if overdue is not None:
        clause = overdue_clause(utcnow())
        stmt = stmt.where(clause if overdue else ~clause)
    if q:
        like = f"%{q.strip()}%"
        stmt = stmt.where(or_(Application.name.like(like), Application.reference.like(like.upper()),
                              *registry.phone_matches(principal, q, Application.phone_hash,
                                                      Application.contact_phone_hash)))
    waiting = Application.status.in_(OPEN_STATUSES)
    stmt = stmt.order_by(waiting.desc(), (Application.urgency == Urgency.EMERGENCY).desc(), Application.due_at,
                         Application.id.desc())
    items, total = paginate(db.session, stmt, page, page_size)
    return [present_application(principal, a) for a in items], total


def get_application(principal: Principal, application_id: int, *, for_update: bool = False) -> Application:
    """One application the caller may see, with its steps and documents."""
    stmt = (select(Application).options(selectinload(Application.steps), selectinload(Application.documents))
            .where(Application.id == application_id, applications_visible(principal)))
    found = db.session.scalar(stmt.with_for_update() if for_update else stmt)
    if found is None:
        raise NotFound(N_("No such application."))
    return present_application(principal, found)


def _open_for(principal: Principal, application_id: int) -> Application:
    require_manager(principal)
    application = get_application(principal, application_id, for_update=True)
    if application.status not in OPEN_STATUSES:
        raise Conflict(f"The application is {application.status}; it takes no more steps.",
                       {"status": [application.status]}, code="application_settled")
    return application


def record_step(principal: Principal, application_id: int, kind: str, note: str = "") -> Application:
    """Record a step — contacted, visited, verified, a note, closed — with who and when; the first contact
    stops the deadline clock."""
    try:
        step = StepKind(kind)
    except ValueError:
        step = None
    if step not in STEP_STATUS:
        raise ValidationFailed(N_("Unknown step."), {"kind": [f"One of {', '.join(s.value for s in STEP_STATUS)}."]})
    if step in (StepKind.CLOSED, StepKind.NOTE) and not (note or "").strip():
        raise ValidationFailed(N_("Say why."), {"note": ["Required for this step."]})
    application = _open_for(principal, application_id)
    if STEP_STATUS[step] is not None:
        application.status = STEP_STATUS[step].value
    if step in CONTACT_STEPS and application.first_contact_at is None:
        application.first_contact_at = utcnow()
    if step == StepKind.CLOSED:
        application.decided_at = utcnow()
    _step(application, step, note, principal)
    record_event(db.session, f"application_{step.value}", "applications", application.id, note=note)
    db.session.commit()
    return application


def reject(principal: Principal, application_id: int, reason: str) -> Application:
    """Refuse help, with the reason the applicant will be told."""
    if not (reason or "").strip():
        raise ValidationFailed(N_("Say why the application is refused."), {"reason": ["Required."]})
    application = _open_for(principal, application_id)
    application.status = Status.REJECTED.value
    application.decided_at = utcnow()
    application.first_contact_at = application.first_contact_at or utcnow()
    _step(application, StepKind.REJECTED, reason, principal)
    record_event(db.session, "application_rejected", "applications", application.id, reason=reason)
    db.session.commit()
    return application


# --- approval: a recipient with needs ---------------------------------------------------------------------


def _existing_recipient(application: Application, id_number: str | None) -> Recipient | None:
    """The registry's recipient for this application: the one it already names, else by ID number, else by
    name and phone (only when exactly one matches)."""
    if application.recipient_id is not None:
        return db.session.get(Recipient, application.recipient_id)
    if id_number:
        found = db.session.scalar(select(Recipient).where(
            Recipient.id_number_hash == registry.id_number_lookup_hash(id_number)))
        if found is not None:
            return found
    if application.phone_hash:
        same = db.session.scalars(select(Recipient).where(
            Recipient.name == application.name,
            or_(Recipient.phone_hash == application.phone_hash,
                Recipient.family_carer_phone_hash == application.phone_hash))).all()
        if len(same) == 1:
            return same[0]
    return None


def _recipient_data(application: Application, given: dict) -> dict:
    """The recipient's fields: what the manager gave, the application's details where they did not."""
    data = {"name": application.name, "phone": registry.phone_in_clear(application), "address": application.address,
            "family_carer_name": application.contact_name,
            "family_carer_phone": registry.phone_in_clear(application, "contact_phone")}
    data.update({k: v for k, v in given.items() if v not in (None, "")})
    area_code = data.get("area") or (application.community or application.town).code
    data["area"] = area_code
    area = db.session.scalar(select(Area).where(Area.code == area_code))
    if area is not None and data.get("lat") is None and area.centroid_lat is not None:
        data["lat"], data["lon"] = area.centroid_lat, area.centroid_lon
    return data


def _prefixed(exc: ValidationFailed, prefix: str) -> ValidationFailed:
    return ValidationFailed(exc.message, {f"{prefix}.{k}": v for k, v in exc.errors.items()})


def approve(principal: Principal, application_id: int, data: dict) -> dict:
    """Approve help. `provisional`: at once, as emergency help, the documents listed to follow by a deadline
    (先救助后补材料). The application becomes a recipient (found in the registry and updated with the details
    given, else registered) with urgent or normal needs that start today, all in one transaction; the needs are then handed to matching. Returns the
    application, the recipient, the needs and the matching run."""
    from servicehub.matching.services import run_matching

    application = _open_for(principal, application_id)
    if application.status == Status.PROVISIONAL:
        raise Conflict(N_("Help has started already; it is approved when the missing documents are in."),
                       {"status": [application.status]}, code="already_provisional")
    provisional = bool(data.get("provisional"))
    given = data.get("recipient") or {}
    recipient = _existing_recipient(application, given.get("id_number"))
    if recipient is None:
        if not given.get("id_number") or not given.get("assistance_class"):
            raise ValidationFailed(N_("Register the person first: ID number and assistance class are needed."), {
                **({"recipient.id_number": ["Required for a new recipient."]} if not given.get("id_number") else {}),
                **({"recipient.assistance_class": ["Required for a new recipient."]}
                   if not given.get("assistance_class") else {})})
        try:
            recipient = registry.add_recipient(principal, _recipient_data(application, given))
        except ValidationFailed as exc:
            db.session.rollback()
            raise _prefixed(exc, "recipient") from None
        created = True
    else:
        # Found in the registry: what the manager gave (a new address, phone, class …) updates it.
        changes = {k: v for k, v in given.items() if v not in (None, "") and k != "id_number"}
        try:
            registry.change_recipient(principal, recipient, changes)
        except ValidationFailed as exc:
            db.session.rollback()
            raise _prefixed(exc, "recipient") from None
        created = False
    urgent = provisional or application.urgency == Urgency.EMERGENCY
    lines = data.get("needs") or [{"service_type": code, "quantity": 1} for code in application.service_types]
    if not lines:
        raise ValidationFailed(N_("Say which services to start."), {"needs": ["At least one service."]})
    today = district_today()
    source = NeedSource.ACTIVE_DISCOVERY if application.source == Source.DISCOVERY else NeedSource.APPLICATION
    needs = []
    for index, line in enumerate(lines):
        line = {"period": "week", **line}
        if urgent and line["period"] == "week" and not line.get("preferred_days"):
            line["preferred_days"] = days_from(today, line.get("quantity") or 1)  # the first visit today
        try:
            needs.append(registry.add_need(principal, {
                "start_date": today, **line, "recipient_id": recipient.id,
                "priority": Priority.URGENT.value if urgent else line.get("priority", Priority.NORMAL.value),
                "source": source.value, "notes": f"{application.reference} {line.get('notes', '')}".strip()}))
        except ValidationFailed as exc:
            db.session.rollback()
            raise _prefixed(exc, f"needs.{index}") from None
    application.recipient_id = recipient.id
    application.status = (Status.PROVISIONAL if provisional else Status.APPROVED).value
    application.decided_at = utcnow()
    application.first_contact_at = application.first_contact_at or utcnow()
    if provisional:
        due = today + timedelta(days=_config("SERVICEHUB_INTAKE_DOCUMENT_DAYS"))
        application.documents_due_on = due
        for name in data.get("documents") or DEFAULT_DOCUMENTS:
            db.session.add(MissingDocument(application_id=application.id, name=name, due_on=due))
    note = data.get("note", "")
    _step(application, StepKind.PROVISIONAL if provisional else StepKind.APPROVED,
          f"{note} → recipient {recipient.id}, needs {', '.join(str(n.id) for n in needs)}".strip(), principal)
    record_event(db.session, "application_approved", "applications", application.id, provisional=provisional,
                 recipient_id=recipient.id, recipient_created=created, needs=[n.id for n in needs])
    db.session.commit()
    run = run_matching(principal, need_ids=[n.id for n in needs], wait=True)
    application.matching_run_id = run.id
    db.session.commit()
    return {"application": application, "recipient": recipient, "needs": needs, "matching_run": run,
            "recipient_created": created}


def days_from(today: date, per_week: int) -> list[int]:
    """`per_week` ISO weekdays spread over the week, the first one today: when an emergency's visits fall."""
    first = today.isoweekday() - 1
    return sorted({(first + round(k * 7 / per_week)) % 7 + 1 for k in range(min(per_week, 7))})


def receive_document(principal: Principal, application_id: int, document_id: int) -> Application:
    """A missing document is in; when the last one is, provisional help becomes approved help."""
    require_manager(principal)
    application = get_application(principal, application_id, for_update=True)
    document = next((d for d in application.documents if d.id == document_id), None)
    if document is None:
        raise NotFound(N_("No such document on this application."))
    if document.received_at is not None:
        raise Conflict(N_("That document is already in."), {"document_id": ["Already received."]},
                       code="already_received")
    document.received_at = utcnow()
    document.received_by = principal.username
    _step(application, StepKind.DOCUMENT_RECEIVED, document.name, principal)
    if application.status == Status.PROVISIONAL and all(d.received_at for d in application.documents):
        application.status = Status.APPROVED.value
        _step(application, StepKind.APPROVED, "documents complete", principal)
    record_event(db.session, "application_document_received", "applications", application.id, document=document.name)
    db.session.commit()
    return application


# --- the jobs --------------------------------------------------------------------------------------------


def escalate_overdue(now: datetime | None = None) -> int:
    """Mark every overdue application (nobody in touch by its deadline) as escalated to the district, once, and
    put it in the town's managers' alert inbox."""
    now = now or utcnow()
    overdue = db.session.scalars(select(Application).where(overdue_clause(now), Application.escalated_at.is_(None))
                                 .with_for_update()).all()
    tz = district_tz()
    for application in overdue:
        application.escalated_at = now
        _step(application, StepKind.ESCALATED, f"due {application.due_at.isoformat(timespec='minutes')}",
              by_name="system")
        due = f"{application.due_at.astimezone(tz):%Y-%m-%d %H:%M}"
        raise_alert(AlertKind.APPLICATION_OVERDUE, f"application:{application.id}",
                    f"Application {application.reference} ({application.name}): nobody got in touch by {due}.",
                    town_id=application.town_id, recipient_id=application.recipient_id,
                    details={"application_id": application.id, "reference": application.reference,
                             "name": application.name, "due": due})
    if overdue:
        record_event(db.session, "applications_escalated", "applications", None, ids=[a.id for a in overdue])
    db.session.commit()
    return len(overdue)


def remind_documents(today: date | None = None) -> int:
    """Remind of every missing document of an open case that is due within three days or overdue, at most
    every `SERVICEHUB_INTAKE_REMIND_DAYS` days, until it is in or the case is closed: a step on the case, and one
    alert a day per case in the town's managers' inbox."""
    today = today or district_today()
    every = _config("SERVICEHUB_INTAKE_REMIND_DAYS")
    documents = db.session.scalars(
        select(MissingDocument).join(Application)
        .where(MissingDocument.received_at.is_(None), Application.status == Status.PROVISIONAL,
               MissingDocument.due_on <= today + timedelta(days=3),
               or_(MissingDocument.last_reminded_on.is_(None),
                   MissingDocument.last_reminded_on <= today - timedelta(days=every)))
        .with_for_update()).all()
    by_application = defaultdict(list)
    for document in documents:
        document.last_reminded_on = today
        document.reminders += 1
        late = "overdue" if document.due_on < today else "due"
        _step(document.application, StepKind.REMINDED, f"{document.name}: {late} {document.due_on.isoformat()}",
              by_name="system")
        by_application[document.application].append(document)
    for application, missing in by_application.items():
        names, due = "、".join(d.name for d in missing), min(d.due_on for d in missing).isoformat()
        raise_alert(AlertKind.DOCUMENTS_DUE, f"documents:{application.id}:{today.isoformat()}",
                    f"Application {application.reference} ({application.name}): still missing {names} (due {due}).",
                    town_id=application.town_id, recipient_id=application.recipient_id,
                    details={"application_id": application.id, "reference": application.reference,
                             "name": application.name, "documents": names, "due": due})
    if documents:
        record_event(db.session, "application_documents_reminded", "missing_documents", None,
                     ids=[d.id for d in documents])
    db.session.commit()
    return len(documents)


def discovery_rules() -> list[dict]:
    """Every discovery rule with its thresholds in force and whether it runs."""
    stored = {r.code: r for r in db.session.scalars(select(DiscoveryRule))}
    found = []
    for rule in rules.RULES:
        row = stored.get(rule.code)
        params = {**rule.defaults, **(row.params if row else {})}
        found.append({"code": rule.code, "name_zh": rule.name_zh, "name_en": rule.name_en,
                      "enabled": row.enabled if row else True, "params": params,
                      "text_zh": rules.describe(rule.code, params, "zh"),
                      "text_en": rules.describe(rule.code, params, "en"),
                      "updated_at": row.updated_at if row else None, "updated_by": row.updated_by if row else ""})
    return found


def may_set_rules(principal: Principal) -> bool:
    """Whether the caller sets the discovery rules and runs them by hand: the district's managers and admins."""
    return principal.role == Role.ADMIN or (principal.role == Role.MANAGER and principal.town_id is None)


def update_discovery_rule(principal: Principal, code: str, enabled: bool | None, params: dict | None) -> dict:
    """Switch a rule on or off or change its thresholds (district managers and admins)."""
    if not may_set_rules(principal):
        raise PermissionDenied(N_("Discovery rules are set by the district."))
    if code not in rules.RULE_BY_CODE:
        raise NotFound(N_("No such discovery rule."))
    row = db.session.get(DiscoveryRule, code) or DiscoveryRule(code=code, enabled=True, params={})
    merged, problems = rules.checked_params(code, {**row.params, **(params or {})})
    if problems:
        raise ValidationFailed(N_("The thresholds are not valid."), {f"params.{k}": [v] for k, v in problems.items()})
    row.params = {k: v for k, v in merged.items() if v != rules.RULE_BY_CODE[code].defaults[k]}
    if enabled is not None:
        row.enabled = enabled
    row.updated_by = principal.username
    db.session.add(row)
    record_event(db.session, "discovery_rule_changed", "discovery_rules", code, enabled=row.enabled, params=merged)
    db.session.commit()
    return next(r for r in discovery_rules() if r["code"] == code)


def _people(today: date, enabled: dict[str, dict]) -> list[rules.PersonFacts]:
    """Every active recipient as the rules see them, with the visits the enabled rules look at: every visit
    of the last days `all_visits_missed` counts, and the welfare checks of as many months back as
    `lives_alone_missed_checks` wants checks in a row (a monthly check missed twice is two months)."""
    windows = []  # (first day, service type or None for any)
    if "all_visits_missed" in enabled:
        windows.append((today - timedelta(days=enabled["all_visits_missed"]["days"]), None))
    if "lives_alone_missed_checks" in enabled:
        params = enabled["lives_alone_missed_checks"]
        windows.append((today - timedelta(days=31 * params["in_a_row"]), params["service_type"]))
    seen: dict[int, set] = {}
    for first, code in windows:
        stmt = (select(Visit.recipient_id, Visit.id, Visit.service_date, ServiceType.code, Visit.status)
                .join(ServiceType, ServiceType.id == Visit.service_type_id)
                .where(Visit.service_date.between(first, today),
                       Visit.status.in_((VisitStatus.COMPLETED, VisitStatus.MISSED))))
        if code is not None:
            stmt = stmt.where(ServiceType.code == code)
        for recipient_id, visit_id, day, type_code, status in db.session.execute(stmt):
            seen.setdefault(recipient_id, set()).add((day, visit_id, type_code, status))
    visits = {rid: tuple((day, code, status) for day, _, code, status in sorted(found)) for rid, found in seen.items()}
    return [rules.PersonFacts(rid, age_in_years(birth, today), lives_alone, valid_until, visits.get(rid, ()))
            for rid, birth, lives_alone, valid_until in db.session.execute(
                select(Recipient.id, Recipient.birth_date, Recipient.lives_alone, Recipient.class_valid_until)
                .where(Recipient.status == RecipientStatus.ACTIVE))]


def run_discovery_as(principal: Principal) -> list[Application]:
    """Run the discovery rules now, by hand (the district)."""
    if not may_set_rules(principal):
        raise PermissionDenied(N_("Discovery is run by the district."))
    return run_discovery()



def run_discovery(today: date | None = None) -> list[Application]:
    """Run the enabled discovery rules and file a work-queue item for each person at risk who has no open
    item of the same rule; each item says which rule raised it and why."""
    today = today or district_today()
    enabled = {r["code"]: r["params"] for r in discovery_rules() if r["enabled"]}
    hits = rules.discover(_people(today, enabled), today, enabled)
    open_items = set(db.session.execute(
        select(Application.rule_code, Application.recipient_id)
        .where(Application.source == Source.DISCOVERY, Application.status.in_(OPEN_STATUSES))).all())
    filed = []
    for code, recipient_id, why in hits:
        if (code, recipient_id) in open_items:
            continue
        recipient = db.session.get(Recipient, recipient_id)
        rule = rules.RULE_BY_CODE[code]
        area = db.session.get(Area, recipient.area_id)
        carer_phone = registry.phone_in_clear(recipient, "family_carer_phone")
        filed.append(_file({
            "name": recipient.name, "phone": registry.phone_in_clear(recipient) or carer_phone,
            "area": area.code, "address": recipient.address,
            "situation": f"{rule.name_zh}（{why}）: {rules.describe(code, enabled[code], 'zh')}",
            "help_text": rule.name_en, "contact_name": recipient.family_carer_name,
            "contact_phone": carer_phone, "urgency": Urgency.NORMAL.value,
        }, Source.DISCOVERY, created_by="system", recipient_id=recipient_id, rule_code=code))
        open_items.add((code, recipient_id))
    return filed



# --- the working calendar ---------------------------------------------------------------------------------


def working_calendar(since: date | None = None) -> rules.WorkingCalendar:
    """The district's working calendar from a day on (every day entered when none)."""
    stmt = select(CalendarDay.day, CalendarDay.kind)
    if since is not None:
        stmt = stmt.where(CalendarDay.day >= since)
    days = db.session.execute(stmt).all()
    return rules.WorkingCalendar(frozenset(d for d, kind in days if kind == DayKind.HOLIDAY),
                                 frozenset(d for d, kind in days if kind == DayKind.WORKDAY))


def calendar_days(year: int) -> list[CalendarDay]:
    """The days of a year entered in the working calendar, in order."""
    return list(db.session.scalars(select(CalendarDay).where(
        CalendarDay.day.between(date(year, 1, 1), date(year, 12, 31))).order_by(CalendarDay.day)))


def set_calendar_day(principal: Principal, day: date, kind: str, name: str = "") -> CalendarDay:
    """Enter or change a day of the working calendar (the district's managers and admins); deadlines of
    applications nobody has got in touch with yet that count working days over it move with it, in the same
    transaction. Entering the same day again changes nothing."""
    _require_calendar_keeper(principal)
    kind = DayKind(kind)
    if kind == DayKind.WORKDAY and day.weekday() < 5:
        raise ValidationFailed(N_("A weekday is a working day already."), {
            "kind": ["Only a Saturday or Sunday can be worked in exchange for a holiday."]})
    name = (name or "").strip()
    row = db.session.get(CalendarDay, day)
    if row is not None and row.kind == kind and row.name == name:
        return row
    row = row or CalendarDay(day=day)
    row.kind, row.name, row.updated_by = kind.value, name, principal.username
    db.session.add(row)
    db.session.flush()
    moved = _move_deadlines(principal, day)
    record_event(db.session, "calendar_day_set", "calendar_days", day.isoformat(), kind=kind.value, name=name,
                 deadlines_moved=moved)
    db.session.commit()
    return row


def remove_calendar_day(principal: Principal, day: date) -> None:
    """Take a day out of the working calendar (it is as the week makes it again); deadlines move with it."""
    _require_calendar_keeper(principal)
    row = db.session.get(CalendarDay, day)
    if row is None:
        raise NotFound(N_("The day is not in the working calendar."))
    db.session.delete(row)
    db.session.flush()
    moved = _move_deadlines(principal, day)
    record_event(db.session, "calendar_day_removed", "calendar_days", day.isoformat(), deadlines_moved=moved)
    db.session.commit()


def _require_calendar_keeper(principal: Principal) -> None:
    if not may_set_rules(principal):
        raise PermissionDenied(N_("The working calendar is kept by the district."))


def _move_deadlines(principal: Principal, day: date) -> int:
    """Work out again the deadline of every application awaiting its first contact (not an emergency, not yet
    escalated) whose working days run over `day`; each one moved gets a note. Returns how many moved."""
    tz = district_tz()
    start = datetime.combine(day, datetime.min.time(), tzinfo=tz).astimezone(UTC)
    waiting = db.session.scalars(select(Application).where(
        Application.status == Status.NEW, Application.first_contact_at.is_(None),
        Application.escalated_at.is_(None), Application.urgency != Urgency.EMERGENCY,
        Application.due_at >= start, Application.submitted_at < start))
    calendar, moved = None, 0
    for application in waiting:
        calendar = calendar or working_calendar()
        due = _deadline(application.submitted_at.astimezone(tz), False, calendar)
        if due != application.due_at:
            _step(application, StepKind.NOTE, f"deadline {application.due_at.astimezone(tz):%Y-%m-%d %H:%M} -> "
                                               f"{due.astimezone(tz):%Y-%m-%d %H:%M} (working calendar, {day})",
                  principal)
            application.due_at = due
            moved += 1
    return moved
