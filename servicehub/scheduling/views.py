"""Scheduling pages: an organisation's day (the published roster or a run's plan over it: a timeline and a
route map per worker, the visits left unplaced and why, a re-plan's changes; run, publish, report an
absence, move a visit by hand) and a caregiver's route for today on a phone, each stop with the step it is
ready for (check in, check out, or record it as missed; the page's script posts them to the service-record
API) or how it ended.

Each view parses a form, calls one scheduling service with the caller's Principal and renders or
redirects back. A service's refusal (ValidationFailed with the rule a move breaks, Conflict,
PermissionDenied) is shown on the page as a message; the services guarantee that nothing changed.
The helpers below only lay out what the services return (positions on the timeline, points on a map).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, timedelta

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from wtforms.fields import SelectChoice

from servicehub.auth.access import current_principal, requires, safe_next_url
from servicehub.auth.permissions import Permission, Role
from servicehub.errors import (
    Conflict,
    DomainError,
    NotFound,
    PermissionDenied,
    ValidationFailed,
    page_message,
)
from servicehub.i18n import current_language, localized
from servicehub.registry import services as registry
from servicehub.registry.forms import organisation_choices
from servicehub.scheduling import forms, services
from servicehub.timeutil import district_today
from servicehub.visits import services as records
from servicehub.web.format import hhmm, label, local_time

blp = Blueprint("scheduling_pages", __name__, template_folder="templates")

ALL = 10_000  # "every row" for the short lists behind select boxes
RUNS_SHOWN = 10  # recent runs of the day listed under the roster
REFUSALS = (Conflict, ValidationFailed, PermissionDenied, NotFound)
TIMELINE = (7 * 60, 19 * 60)  # the hours a timeline row spans, in minutes from midnight
RUNNING = ("queued", "running")


# --- how the day is laid out ------------------------------------------------------------------


def span(start: int, end: int) -> str:
    """A block's place on a timeline row (07:00–19:00) as CSS: 'left: 12.50%; width: 8.33%'."""
    first, last = TIMELINE
    a = min(max(start, first), last)
    b = min(max(end, a), last)
    whole = last - first
    return f"left: {(a - first) / whole * 100:.2f}%; width: {(b - a) / whole * 100:.2f}%"


def hour_marks() -> list[tuple[int, str]]:
    """The timeline's hour marks: (minute of the day, CSS position)."""
    return [(m, span(m, m).split(";")[0]) for m in range(TIMELINE[0], TIMELINE[1] + 1, 60)]


@dataclass
class MapBox:
    """Projects the day's coordinates linearly into an SVG box: north up, a degree of longitude shortened
    by the cosine of the latitude so that distances look right, the whole day's points fitted inside."""

    south: float
    north: float
    west: float
    east: float
    width: int = 320
    height: int = 220
    margin: int = 16
    stops: tuple[tuple[float, float], ...] = ()  # the day's stops, projected

    @classmethod
    def around(cls, points: list[tuple[float, float]]) -> MapBox:
        """The box around (lat, lon) points (one point, or none, gives a small box around it)."""
        points = [(lat, lon) for lat, lon in points if lat is not None and lon is not None] or [(0.0, 0.0)]
        lats, lons = [p[0] for p in points], [p[1] for p in points]
        return cls(min(lats), max(lats), min(lons), max(lons))

    def xy(self, lat: float, lon: float) -> tuple[float, float]:
        """The SVG point of a coordinate."""
        squeeze = math.cos(math.radians((self.south + self.north) / 2))
        wide = max((self.east - self.west) * squeeze, 1e-6)
        tall = max(self.north - self.south, 1e-6)
        scale = min((self.width - 2 * self.margin) / wide, (self.height - 2 * self.margin) / tall)
        left = (self.width - wide * scale) / 2 if self.east > self.west else self.width / 2
        top = (self.height - tall * scale) / 2 if self.north > self.south else self.height / 2
        x = left + (lon - self.west) * squeeze * scale
        y = top + (self.north - lat) * scale
        return round(x, 1), round(y, 1)

    @property
    def points(self) -> list[tuple[float, float]]:
        """Every stop of the day in the box (drawn faintly under each route, for where it lies in the day)."""
        return sorted(set(self.stops))

    def route(self, worker_day) -> dict:
        """A worker's route drawn in the box: home, the line home → stops in order → home, numbered stops."""
        worker = worker_day.worker
        home = self.xy(worker.start_lat, worker.start_lon)
        stops = [(n, *self.xy(s.visit.recipient.lat, s.visit.recipient.lon), s)
                 for n, s in enumerate(worker_day.stops, start=1)]
        line = [home, *((x, y) for _n, x, y, _s in stops), home]
        return {"home": home, "line": " ".join(f"{x},{y}" for x, y in line), "stops": stops}


def day_map(view) -> MapBox:
    """The box around every worker's start and every stop of the day."""
    starts = [(row.worker.start_lat, row.worker.start_lon) for row in view.workers]
    stops = [(s.visit.recipient.lat, s.visit.recipient.lon) for row in view.workers for s in row.stops]
    box = MapBox.around(starts + stops)
    box.stops = tuple(box.xy(lat, lon) for lat, lon in stops)
    return box


def day_counts(view) -> dict[str, int]:
    """The day in numbers: visits, placed, unplaced, waiting, travel minutes, workers with a route."""
    placed = sum(len(row.stops) for row in view.workers)
    return {
        "visits": placed + len(view.unplaced) + len(view.waiting),
        "placed": placed,
        "unplaced": len(view.unplaced),
        "waiting": len(view.waiting),
        "travel": sum(row.travel for row in view.workers),
        "workers": sum(1 for row in view.workers if row.stops),
    }


def previewing(view) -> bool:
    """Whether the page shows a run's plan for its day (not the roster as published)."""
    return view.run is not None and view.day.isoformat() in (view.run.plan or {})


def present_changes(view) -> list[dict]:
    """A re-plan's changes of the day with the names of the visits and workers they concern."""
    if view.run is None:
        return []
    visits = {s.visit.id: s.visit for row in view.workers for s in row.stops}
    visits.update({v.id: v for v, _reason in view.unplaced})
    visits.update({v.id: v for v in view.waiting})
    names = {row.worker.id: row.worker.name for row in view.workers}

    def who(worker_id):
        return None if worker_id is None else names.get(worker_id, f"#{worker_id}")

    return [
        {**change, "visit": visits.get(change["visit_id"]), "from_name": who(change["from_worker"]),
         "to_name": who(change["to_worker"])}
        for change in view.run.changes or []
        if change.get("date", view.day.isoformat()) == view.day.isoformat()
    ]


def visit_title(visit, start: int | None = None, end: int | None = None) -> str:
    """A visit in one line, for a block's tooltip: times, recipient, service, address, window."""
    parts = []
    if start is not None:
        parts.append(f"{hhmm(start)}–{hhmm(end)}")
    parts += [visit.recipient.name, localized(visit.service_type, "name"), visit.recipient.address or ""]
    parts.append(_("window %(start)s–%(end)s", start=visit.window_start.strftime("%H:%M"),
                   end=visit.window_end.strftime("%H:%M")))
    return " · ".join(p for p in parts if p)


def refusal_message(exc: DomainError) -> str:
    """A service's refusal in the page's language where its code is known, otherwise its own sentence."""
    if isinstance(exc, PermissionDenied):
        return _("Not allowed: %(detail)s", detail=exc.message)
    # A move's refusal (a publication's start_past is a Conflict: below).
    if exc.code in forms.LABELS["move_rule"] and isinstance(exc, ValidationFailed):
        if current_language() != "en":  # the rule's own words: the detail is the service's English sentence
            return _("Not moved — %(rule)s.", rule=label("move_rule", exc.code))
        return _("Not moved — %(rule)s (%(detail)s).", rule=label("move_rule", exc.code), detail=exc.message)
    if exc.code == "already_published":
        return _("This plan is already published.")
    if exc.code == "start_past":
        return page_message(exc.message)
    if exc.code == "stale_run":
        return _("The roster of this day changed after the plan was made: plan the day again.")
    status = (exc.errors.get("status") or [None])[0]
    if status in forms.LABELS["visit_status"]:  # a visit under way, done, missed or cancelled
        return _("A visit that is “%(status)s” cannot be moved.", status=label("visit_status", status))
    if status in forms.LABELS["run_status"]:  # a run still under way, or failed
        return _("Only a solved plan can be published; this one is “%(status)s”.", status=label("run_status", status))
    if "date" in exc.errors and isinstance(exc, ValidationFailed):
        return _("Days in the past cannot be planned.")
    return exc.message


def task_name(item: dict) -> str:
    """A checklist task ({"code", "name_zh", "name_en"}) named in the page's language (Chinese if not in it)."""
    return item.get(f"name_{current_language()}") or item["name_zh"]


@blp.context_processor
def _scheduling_helpers():
    return {"span": span, "visit_title": visit_title, "day_url": day_url, "running": RUNNING, "task_name": task_name}


# --- the day of an organisation -----------------------------------------------------------------


def day_url(organisation_id: int | None, service_date: date, run_id: int | None = None) -> str:
    """The day page of an organisation (a provider's own needs no organisation in the address)."""
    own = current_principal().is_provider and current_principal().organisation_id == organisation_id
    return url_for("scheduling_pages.day", date=service_date.isoformat(),
                   organisation_id=None if own else organisation_id, run=run_id)


def _back(default: str):
    """Where a step goes back to: the page it was taken on (a path of this site), else `default`."""
    return redirect(safe_next_url(request.form.get("next")) or default, code=303)


def _here() -> str:
    """This page's address, for the forms on it to come back to."""
    return request.full_path.rstrip("?")


def _flash_form_errors(form) -> None:
    for name, messages in form.errors.items():
        field = form[name] if name in form._fields else None
        for message in messages:
            if field is not None and field.label.text:
                message = _("%(field)s: %(message)s", field=field.label.text, message=message)
            flash(message, "error")


@blp.get("/schedule")
@requires(Permission.SCHEDULE_READ)
def day():
    """An organisation's day (tomorrow by default): as published, or as run `run` would make it."""
    principal = current_principal()
    form = forms.DayForm(request.args)
    if not principal.is_provider:
        form.organisation_id.choices = organisation_choices(
            registry.list_organisations(principal, page_size=ALL)[0], _("Choose an organisation"))
    form.validate()
    today = district_today()
    service_date = form.value("date") or today + timedelta(days=1)
    days = {"previous": service_date - timedelta(days=1), "next": service_date + timedelta(days=1), "today": today}
    organisation_id = form.value("organisation_id") or (principal.organisation_id if principal.is_provider else None)
    if organisation_id is None:
        return render_template("scheduling/day.html", form=form, day=service_date, days=days, view=None,
                               organisation=None)
    view = services.day_view(principal, organisation_id, service_date, form.value("run"))
    organisation = registry.get_organisation(principal, organisation_id)
    runs, _total = services.list_runs(principal, organisation_id=organisation_id, service_date=service_date,
                                      page_size=RUNS_SHOWN)
    workers = [row.worker for row in view.workers]
    absence_form = forms.AbsenceForm(formdata=None)
    absence_form.worker_id.choices = [SelectChoice(str(w.id), w.name) for w in workers]
    return render_template(
        "scheduling/day.html",
        form=form,
        day=service_date,
        days=days,
        view=view,
        organisation=organisation,
        run=view.run,
        progress=services.run_progress(view.run) if view.run is not None else None,
        previewing=previewing(view),
        counts=day_counts(view),
        hours=hour_marks(),
        map=day_map(view),
        changes=present_changes(view),
        runs=runs,
        workers=workers,
        can_manage=principal.can(Permission.SCHEDULE_MANAGE),
        run_form=forms.RunForm(formdata=None),
        absence_form=absence_form,
        here=_here(),
    )


@blp.post("/schedule/run")
@requires(Permission.SCHEDULE_MANAGE)
def run_day():
    """Plan an organisation's day with the solver; the page shows the plan (or polls until it is ready)."""
    form = forms.RunForm()
    if not form.validate_on_submit():
        _flash_form_errors(form)
        return _back(url_for("scheduling_pages.day"))
    try:
        run = services.start_run(current_principal(), form.organisation_id.data, form.date.data,
                                 time_limit_s=form.time_limit_s.data)
    except REFUSALS as exc:
        flash(refusal_message(exc), "error")
        return _back(url_for("scheduling_pages.day"))
    if run.status == "solved":
        flash(_("Planned: %(placed)d of %(visits)d visits placed, %(unplaced)d unplaced. Check the plan, then "
                "publish it.", placed=run.placed, visits=run.visits_total, unplaced=run.unplaced), "success")
    elif run.status == "failed":
        flash(_("The plan could not be made: %(error)s", error=run.error), "error")
    else:
        flash(_("Planning has started; the plan shows here when it is ready."), "success")
    return redirect(day_url(run.organisation_id, form.date.data, run.id), code=303)


@blp.post("/schedule/runs/<int:run_id>/publish")
@requires(Permission.SCHEDULE_MANAGE)
def publish(run_id: int):
    """Publish a solved plan: the roster of its day(s) becomes what caregivers see, as a new version."""
    form = forms.StepForm()
    if not form.validate_on_submit():
        return _back(url_for("scheduling_pages.day"))
    try:
        versions = services.publish_run(current_principal(), run_id)
    except REFUSALS as exc:
        flash(refusal_message(exc), "error")
        return _back(url_for("scheduling_pages.day"))
    for version in versions:
        flash(_("Published: the roster of %(date)s, version %(version)d (%(visits)d visits on routes, "
                "%(unplaced)d unplaced).", date=version.service_date.isoformat(), version=version.version,
                visits=version.visits, unplaced=version.unplaced), "success")
    first = versions[0]
    return redirect(day_url(first.organisation_id, first.service_date), code=303)


@blp.post("/schedule/replan-now")
@requires(Permission.SCHEDULE_MANAGE)
def replan_now():
    """Re-plan the organisation's today from now (done and started visits stay); the page shows the plan."""
    form = forms.ReplanNowForm()
    if not form.validate_on_submit():
        _flash_form_errors(form)
        return _back(url_for("scheduling_pages.day"))
    try:
        run = services.replan_from_now(current_principal(), form.organisation_id.data)
    except REFUSALS as exc:
        flash(refusal_message(exc), "error")
        return _back(url_for("scheduling_pages.day"))
    if run.status == "failed":
        flash(_("The plan could not be made: %(error)s", error=run.error), "error")
    else:
        flash(_("Today has been re-planned from %(time)s. Check the changes, then publish.",
                time=f"{run.replan_from_min // 60:02d}:{run.replan_from_min % 60:02d}"), "success")
    return redirect(day_url(run.organisation_id, run.date_from, run.id), code=303)


@blp.post("/schedule/absence")
@requires(Permission.SCHEDULE_MANAGE)
def absence():
    """A worker is out (from a time of day, or all day): record it and show the re-plan of the rest of the day."""
    form = forms.AbsenceForm()
    if not form.validate_on_submit():
        _flash_form_errors(form)
        return _back(url_for("scheduling_pages.day"))
    try:
        recorded, run = services.report_absence(current_principal(), form.worker_id.data, form.date.data,
                                                form.from_time.data, form.reason.data)
    except REFUSALS as exc:
        flash(refusal_message(exc), "error")
        return _back(url_for("scheduling_pages.day"))
    flash(_("Absence of %(worker)s recorded; the rest of the day has been re-planned. Check the changes, then "
            "publish.", worker=recorded.worker.name), "success")
    return redirect(day_url(run.organisation_id, form.date.data, run.id), code=303)


@blp.post("/schedule/visits/<int:visit_id>/move")
@requires(Permission.SCHEDULE_MANAGE)
def move(visit_id: int):
    """Put a visit on a worker's route by hand (if no hard rule breaks); it is locked there."""
    form = forms.MoveForm()
    if not form.validate_on_submit():
        _flash_form_errors(form)
        return _back(url_for("scheduling_pages.day"))
    try:
        visit = services.move_visit(current_principal(), visit_id, form.worker_id.data, form.start.data)
    except REFUSALS as exc:
        flash(refusal_message(exc), "error")
    else:
        flash(_("Moved: %(recipient)s, %(service)s to %(worker)s at %(start)s; locked there.",
                recipient=visit.recipient.name, service=localized(visit.service_type, "name"),
                worker=visit.worker.name, start=local_time(visit.planned_start)), "success")
    return _back(url_for("scheduling_pages.day"))


# --- a caregiver's route ------------------------------------------------------------------------


@blp.get("/my/route")
@requires(Permission.ROSTERS_READ)
def my_route():
    """Today's published stops of the signed-in caregiver in route order (others: a worker's day, to check it)."""
    principal = current_principal()
    if principal.role == Role.CAREGIVER:
        worker_id, service_date = None, district_today()
    else:
        form = forms.RouteForm(request.args)
        form.validate()
        worker_id, service_date = form.value("worker_id"), form.value("date") or district_today()
        if worker_id is None:
            return redirect(url_for("scheduling_pages.day"))
    worker, visits = services.roster(principal, service_date, worker_id)
    roster = services.present_roster(principal, worker, service_date, visits)
    # The steps are the caregiver's own, on the day of the visits (others read how each stop stands).
    can_record = (principal.role == Role.CAREGIVER and principal.can(Permission.RECORDS_WRITE)
                  and service_date == district_today())
    return render_template("scheduling/route.html", roster=roster, today=district_today(),
                           entries=stop_records(principal, visits), can_record=can_record,
                           missed_reasons=forms.MISSED_REASONS)


def stop_records(principal, visits) -> dict[int, dict[str, object]]:
    """What has been recorded of the stops under way or settled, the latest entry of each kind (in ledger
    order): {visit id: {"check_in": entry, "delivery": entry, "missed": entry}}. A stop not yet started has
    none, and costs no query."""
    found: dict[int, dict[str, object]] = {}
    for visit in visits:
        if visit.status not in services.SETTLED:
            continue
        entries, _total = records.list_records(principal, visit_id=visit.id, page_size=ALL)
        found[visit.id] = {entry.kind: entry for entry in entries}
    return found
