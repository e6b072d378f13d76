"""Application pages (申请救助): the public form and status check (no sign-in, phone first), and the town's work
queue for managers — the queue with its deadlines, staff registration, one application with its steps, missing
documents and the forms to act on it (record a step, reject, approve as emergency help or after verification,
a document received), and the rules of active discovery.

Each view parses a form, calls one intake service and renders or redirects. A service's refusal of the input
(ValidationFailed) comes back as the form with its fields marked (nothing was stored: the services guarantee
it); a Conflict is a message; PermissionDenied and NotFound are the usual error pages. The helpers below only
lay out what the services return: deadlines in the district's time, time left, the words for coded values.
"""

from __future__ import annotations

import re
from datetime import datetime

from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from wtforms.fields import SelectChoice

from servicehub.auth.access import client_ip, current_principal, public, requires
from servicehub.auth.permissions import ANONYMOUS, Permission
from servicehub.catalog import services as catalog
from servicehub.database import utcnow
from servicehub.errors import Conflict, NotFound, RateLimited, ValidationFailed
from servicehub.i18n import current_language, localized
from servicehub.intake import forms, services
from servicehub.registry import services as registry
from servicehub.timeutil import district_today, district_tz
from servicehub.web.format import label, last_page, weekday_label
from servicehub.web.forms import attach_service_errors, known_message

blp = Blueprint("intake_pages", __name__, template_folder="templates")

PAGE_SIZE = 50
FILED = "intake_filed"  # the session key of the application just filed on the public form (for its receipt)
# The services' field messages in the page's language (others are shown as the service wrote them).
SERVICE_MESSAGES = {
    "Who needs help?": _l("Write the name of the person who needs help."),
    "A mobile (11 digits) or landline number to call back.": _l(
        "A mobile (11 digits) or landline number to call back."),
    "Unknown area.": _l("Choose the town or community of the address."),
    "Say what happened.": _l("Say in a few words what happened."),
    "Choose a service or say what help is needed.": _l("Tick a service or say what help is needed."),
    "Not a phone number.": _l("Not a phone number."),
    "emergency or normal.": _l("Choose whether it is an emergency."),
    "Wrong or expired answer; try the new sum.": _l("Wrong or expired answer; please answer the new sum."),
    "Too many applications today.": _l("This phone number has applied several times today."),
    "Not in your town.": _l("This address is not in your town."),
    "Required for a new recipient.": _l("Required to register the person."),
    "Required for this step.": _l("Say why (required for this step)."),
    "Required.": _l("Required."),
    "At least one service.": _l("Tick at least one service."),
    "Unknown threshold.": _l("Unknown threshold."),
    "A service type code like PS03.": _l("A service type code like PS03."),
    "Only a Saturday or Sunday can be worked in exchange for a holiday.": _l(
        "Only a Saturday or Sunday can be worked in exchange (调休): a weekday is a working day already."),
}
PATTERN_MESSAGES = (
    (re.compile(r"^Unknown service types: (.*)\.$"), lambda m: _("Unknown services: %(codes)s.", codes=m[1])),
    (re.compile(r"^A whole number from (\d+) to (\d+)\.$"),
     lambda m: _("A whole number from %(low)s to %(high)s.", low=m[1], high=m[2])),
)


# --- how values are shown ---------------------------------------------------------------------


def local_moment(moment: datetime | None) -> str:
    """An aware datetime in the district's time: '2026-05-01 14:30' ('—' when there is none)."""
    return "—" if moment is None else moment.astimezone(district_tz()).strftime("%Y-%m-%d %H:%M")


def duration_words(seconds: float) -> str:
    """A span of time in words, to the minute under a day, to the hour above: '2 h 5 min', '3 d 4 h'."""
    minutes = max(0, int(seconds // 60))
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        return _("%(days)d d %(hours)d h", days=days, hours=hours)
    if hours:
        return _("%(hours)d h %(minutes)d min", hours=hours, minutes=mins)
    return _("%(minutes)d min", minutes=mins)


def deadline(application, now: datetime | None = None) -> dict:
    """The first-contact deadline of an application as the queue shows it: when, the time left or overdue
    (while nobody has been in touch), or when the first contact was."""
    now = now or utcnow()
    shown = {"due": local_moment(application.due_at), "overdue": application.is_overdue(now or utcnow()), "left": "",
             "contacted": local_moment(application.first_contact_at) if application.first_contact_at else ""}
    if application.first_contact_at is None and application.status == "new":
        span = (application.due_at - now).total_seconds()
        shown["left"] = (_("overdue by %(time)s", time=duration_words(-span)) if span < 0
                         else _("%(time)s left", time=duration_words(span)))
    return shown


def service_message(message: str) -> str:
    """A service's field message in the page's language where it is known."""
    return known_message(message, SERVICE_MESSAGES, PATTERN_MESSAGES)


def refuse_onto(form, exc, fields=None) -> int:
    """Put a service's field errors next to the form's fields (translated where known; `fields` renames the
    service's names to the form's) and a line above the form; the status to answer with."""
    attach_service_errors(form, exc, service_message, fields)
    form.other_errors.setdefault("", []).insert(
        0, _("Nothing was saved: please correct the marked fields.") if exc.errors else service_message(exc.message))
    return exc.status


def approval_field(name: str) -> str:
    """The approval form's field for a service's error name ('recipient.id_number' -> 'id_number',
    'needs.0.service_type' -> 'service_types')."""
    if name.startswith("recipient."):
        return name.split(".", 1)[1]
    if name == "needs" or name.startswith("needs."):
        return "service_types"
    return name


def rule_field(name: str) -> str:
    """A rule form's field for a service's error name ('params.min_age' -> 'min_age')."""
    return name.split(".", 1)[1] if name.startswith("params.") else name


def service_names(categories) -> dict[str, str]:
    """Every service type's name in the page's language, by code."""
    return {t.code: localized(t, "name") for c in categories for t in c.types}


@blp.context_processor
def _intake_helpers():
    return {"local_moment": local_moment, "deadline": deadline, "open_statuses": [s.value for s in services.OPEN_STATUSES],
            "rule_name": lambda rule: rule["name_en"] if current_language() == "en" else rule["name_zh"],
            "rule_text": lambda rule: rule["text_en"] if current_language() == "en" else rule["text_zh"]}


# --- the forms' choices ------------------------------------------------------------------------


def _area_choices(areas, blank: str) -> list[SelectChoice]:
    """Towns and their communities, grouped by town (the town itself first, for 'not sure which community')."""
    towns = [a for a in areas if a.level == "town"]
    options = [SelectChoice("", blank)]
    for town in towns:
        name = localized(town, "name")
        options.append(SelectChoice(town.code, _("%(town)s (community not sure)", town=name), optgroup=name))
        options.extend(SelectChoice(a.code, localized(a, "name"), optgroup=name)
                       for a in areas if a.level == "community" and a.parent_id == town.id)
    return options


def _service_choices(categories) -> list[SelectChoice]:
    return [SelectChoice(t.code, localized(t, "name"), optgroup=localized(c, "name"))
            for c in categories for t in c.types]


def _application_form(form_class, areas, **kwargs):
    form = form_class(**kwargs)
    categories = catalog.list_categories()
    form.area.choices = _area_choices(areas, _("Choose the town or community"))
    form.service_types.choices = _service_choices(categories)
    return form, categories


# --- the public pages ----------------------------------------------------------------------------


def _apply_page(form, categories, status: int = 200, limited: str = ""):
    """The public form with a fresh sum (a refused form's answer is cleared: the sum is new)."""
    challenge = services.new_challenge()
    form.challenge_token.data = challenge.token
    form.challenge_answer.data = ""
    form.challenge_answer.raw_data = None
    return render_template("intake/apply.html", form=form, categories=categories, question=challenge.question,
                           limited=limited), status


@blp.route("/apply", methods=["GET", "POST"])
@public
def apply():
    """Apply for help, for yourself or a family member, without signing in: the reference number comes back."""
    form, categories = _application_form(forms.PublicApplicationForm, registry.recipient_areas(ANONYMOUS))
    if not form.is_submitted():
        return _apply_page(form, categories)
    if not form.validate():
        form.other_errors[""] = [_("Nothing was saved: please correct the marked fields.")]
        return _apply_page(form, categories, 422)
    try:
        filed = services.submit_public(form.service_data(), client_ip())
    except ValidationFailed as exc:
        return _apply_page(form, categories, refuse_onto(form, exc))
    except RateLimited as exc:
        if "phone" in exc.errors:
            message = _("This phone number has applied several times today; the town will call you back. "
                        "If it is urgent, please call the hotline 12345.")
        else:
            message = _("Too many applications have been sent from here in a short time. Please try again in a "
                        "few minutes, or call the hotline 12345.")
        page, status = _apply_page(form, categories, exc.status, limited=message)
        return page, status, exc.headers
    session[FILED] = {"reference": filed.reference, "urgency": filed.urgency, "due_at": filed.due_at.isoformat()}
    return redirect(url_for("intake_pages.filed"), code=303)


@blp.get("/apply/done")
@public
def filed():
    """The receipt of the application just filed: its reference, big, and when someone will be in touch."""
    receipt = session.get(FILED)
    if not receipt:
        return redirect(url_for("intake_pages.apply"))
    return render_template("intake/filed.html", reference=receipt["reference"], urgency=receipt["urgency"],
                           due=local_moment(datetime.fromisoformat(receipt["due_at"])))


@blp.route("/apply/status", methods=["GET", "POST"])
@public
def status():
    """Where an application is, given its reference and the phone number it was filed with (the same 'not
    found' whatever was wrong)."""
    if request.method != "POST":  # from the receipt's link: the reference filled in
        form = forms.StatusForm(formdata=None, reference=request.args.get("reference", ""))
        return render_template("intake/status.html", form=form, application=None)
    form = forms.StatusForm()
    if not form.validate():
        return render_template("intake/status.html", form=form, application=None), 422
    try:
        found = services.check_status(form.reference.data, form.phone.data)
    except NotFound:
        return render_template("intake/status.html", form=form, application=None, not_found=True), 404
    return render_template("intake/status.html", form=form, application=found)


# --- the work queue --------------------------------------------------------------------------------


@blp.get("/intake")
@requires(Permission.APPLICATIONS_READ)
def queue():
    """The work queue (a town manager: the town's): open emergencies and the earliest deadlines first, overdue
    ones marked; filtered by status, source, urgency, overdue and a search."""
    principal = current_principal()
    form = forms.QueueFilterForm(request.args)
    form.town.choices = [SelectChoice("", _("All towns"))] + [SelectChoice(t.code, localized(t, "name"))
                                                              for t in registry.list_towns()]
    form.validate()
    page = form.value("page") or 1
    items, total = services.list_applications(principal, **form.filters(), page=page, page_size=PAGE_SIZE)
    return render_template("intake/queue.html", form=form, applications=items, total=total, page=page,
                           last_page=last_page(total, PAGE_SIZE), now=utcnow())


@blp.route("/intake/new", methods=["GET", "POST"])
@requires(Permission.APPLICATIONS_MANAGE)
def new():
    """Register an application taken by phone, from the hotline, from a grid worker or at the counter."""
    principal = current_principal()
    form, categories = _application_form(forms.StaffApplicationForm, registry.recipient_areas(principal))
    status = 200
    if form.is_submitted():
        if form.validate():
            try:
                application = services.register_application(principal, form.service_data())
            except ValidationFailed as exc:
                status = refuse_onto(form, exc)
            else:
                flash(_("Registered as %(reference)s.", reference=application.reference), "success")
                return redirect(url_for("intake_pages.application", application_id=application.id), code=303)
        else:
            form.other_errors[""] = [_("Nothing was saved: please correct the marked fields.")]
            status = 422
    return render_template("intake/new.html", form=form, categories=categories), status


# --- one application -------------------------------------------------------------------------------


def _approve_form(principal, categories, application=None, **kwargs) -> forms.ApproveForm:
    """The approval form; shown afresh (with `application`), its defaults come from the application: emergency
    help for an emergency, the services asked for, its community, the usual documents."""
    if application is not None:
        kwargs.update(formdata=None, provisional=application.urgency == "emergency",
                      service_types=list(application.service_types),
                      area=(application.community or application.town).code,
                      documents="\n".join(services.DEFAULT_DOCUMENTS))
    form = forms.ApproveForm(**kwargs)
    form.assistance_class.choices = [SelectChoice("", "—")] + [
        SelectChoice(c.code, localized(c, "name")) for c in catalog.list_assistance_classes() if c.active]
    areas = registry.recipient_areas(principal)
    form.area.choices = [SelectChoice(a.code, localized(a, "name") if a.level == "town"
                                      else f"{localized(a.parent, 'name')} · {localized(a, 'name')}")
                         for a in areas]
    form.service_types.choices = _service_choices(categories)
    return form


def _application_page(application_id: int, failed: dict | None = None, status: int = 200):
    """The application's page; `failed` ({action: form}) shows an action's form again with its errors."""
    principal = current_principal()
    application = services.get_application(principal, application_id)
    failed = failed or {}
    categories = catalog.list_categories()
    page_forms = {
        "step": failed.get("step") or forms.StepForm(formdata=None),
        "reject": failed.get("reject") or forms.RejectForm(formdata=None),
        "approve": failed.get("approve") or _approve_form(principal, categories, application),
        "document": forms.ActionForm(formdata=None),
    }
    run_id = application.matching_run_id
    return render_template(
        "intake/application.html", application=application, forms=page_forms, failed=failed,
        categories=categories, service_names=service_names(categories), today=district_today(),
        now=utcnow(),
        matching_url=url_for("matching_pages.queue", run=run_id) if run_id else None,
    ), status


@blp.get("/intake/<int:application_id>")
@requires(Permission.APPLICATIONS_READ)
def application(application_id: int):
    """One application: the person, what happened, the help asked for, the deadline, every step with who and
    when, the missing documents, and (for managers) the forms to act on it."""
    return _application_page(application_id)


def _back(application_id: int, **args):
    return redirect(url_for("intake_pages.application", application_id=application_id, **args), code=303)


@blp.post("/intake/<int:application_id>/steps")
@requires(Permission.APPLICATIONS_MANAGE)
def record_step(application_id: int):
    """Record a step — contacted, visited, verified, a note, closed — with who and when."""
    form = forms.StepForm()
    if not form.validate():
        return _application_page(application_id, {"step": form}, 422)
    try:
        done = services.record_step(current_principal(), application_id, form.kind.data, form.note.data or "")
    except ValidationFailed as exc:
        return _application_page(application_id, {"step": form}, refuse_onto(form, exc))
    except Conflict as exc:
        flash(_settled(exc), "error")
    else:
        flash(_("Recorded: %(step)s (status: %(status)s).", step=label("application_step", form.kind.data),
                status=label("application_status", done.status)), "success")
    return _back(application_id)


@blp.post("/intake/<int:application_id>/reject")
@requires(Permission.APPLICATIONS_MANAGE)
def reject(application_id: int):
    """Refuse help, with the reason the applicant will be told."""
    form = forms.RejectForm()
    if not form.validate():
        return _application_page(application_id, {"reject": form}, 422)
    try:
        services.reject(current_principal(), application_id, form.reason.data)
    except ValidationFailed as exc:
        return _application_page(application_id, {"reject": form}, refuse_onto(form, exc))
    except Conflict as exc:
        flash(_settled(exc), "error")
    else:
        flash(_("The application is not approved; the reason is on file."), "success")
    return _back(application_id)


@blp.post("/intake/<int:application_id>/approve")
@requires(Permission.APPLICATIONS_MANAGE)
def approve(application_id: int):
    """Approve help (at once as emergency help, documents later; or after verification): the person is found
    in the registry or registered, a need starts today for each service, and the needs go to matching."""
    principal = current_principal()
    form = _approve_form(principal, catalog.list_categories())
    if not form.validate():
        form.other_errors[""] = [_("Nothing was saved: please correct the marked fields.")]
        return _application_page(application_id, {"approve": form}, 422)
    try:
        result = services.approve(principal, application_id, form.service_data())
    except ValidationFailed as exc:
        return _application_page(application_id, {"approve": form}, refuse_onto(form, exc, approval_field))
    except Conflict as exc:
        flash(_settled(exc), "error")
        return _back(application_id)
    if result["application"].status == "provisional":
        message = _("Emergency help approved: %(needs)d services start today for %(name)s; the documents are due "
                    "by %(date)s.", needs=len(result["needs"]), name=result["recipient"].name,
                    date=result["application"].documents_due_on.isoformat())
    else:
        message = _("Approved: %(needs)d services start today for %(name)s.", needs=len(result["needs"]),
                    name=result["recipient"].name)
    flash(message, "success")
    return _back(application_id)


@blp.post("/intake/<int:application_id>/documents/<int:document_id>/received")
@requires(Permission.APPLICATIONS_MANAGE)
def document_received(application_id: int, document_id: int):
    """A missing document is in; the last one turns emergency help into approved help."""
    form = forms.ActionForm()
    if form.validate():
        try:
            done = services.receive_document(current_principal(), application_id, document_id)
        except Conflict as exc:
            flash(_settled(exc), "error")
        else:
            if done.status == "approved" and all(d.received_at for d in done.documents):
                flash(_("All documents are in: the application is approved."), "success")
            else:
                flash(_("Document received."), "success")
    return _back(application_id)


def _settled(exc: Conflict) -> str:
    """A Conflict of the application services in the page's language."""
    status = (exc.errors.get("status") or [None])[0]
    if exc.code == "application_settled" and status:
        return _("Nothing was changed: the application is “%(status)s” and takes no more steps.",
                 status=label("application_status", status))
    if exc.code == "already_provisional":
        return _("Emergency help has started already; the application is approved when the documents are in.")
    if exc.code == "already_received":
        return _("That document is already in.")
    return exc.message


# --- discovery rules -------------------------------------------------------------------------------


def _rules_page(failed: dict | None = None, status: int = 200):
    principal = current_principal()
    found = services.discovery_rules()
    failed = failed or {}
    editable = services.may_set_rules(principal)
    rule_forms = {}
    if editable:
        for rule in found:
            rule_forms[rule["code"]] = failed.get(rule["code"]) or forms.rule_form(
                rule, formdata=None, data={"enabled": rule["enabled"], **rule["params"]})
    return render_template("intake/rules.html", rules=found, rule_forms=rule_forms, editable=editable,
                           run_form=forms.ActionForm(formdata=None)), status


@blp.get("/intake/rules")
@requires(Permission.APPLICATIONS_READ)
def discovery_rules():
    """The rules of active discovery (主动发现): what each looks for with its thresholds, whether it runs; the
    district changes them and runs them by hand."""
    return _rules_page()


@blp.post("/intake/rules/run")
@requires(Permission.APPLICATIONS_MANAGE)
def run_discovery():
    """Run the discovery rules now (the daily job does it early every morning)."""
    form = forms.ActionForm()
    if form.validate():
        filed_items = services.run_discovery_as(current_principal())
        if filed_items:
            flash(_("Discovery ran: %(count)d new items in the work queue (%(references)s).", count=len(filed_items),
                    references=", ".join(a.reference for a in filed_items)), "success")
        else:
            flash(_("Discovery ran: nobody new at risk."), "success")
    return redirect(url_for("intake_pages.discovery_rules"), code=303)


@blp.post("/intake/rules/<code>")
@requires(Permission.APPLICATIONS_MANAGE)
def update_rule(code: str):
    """Switch a rule on or off or change its thresholds (the district)."""
    rule = next((r for r in services.discovery_rules() if r["code"] == code), None)
    if rule is None:
        raise NotFound(_("No such discovery rule."))
    form = forms.rule_form(rule)
    if not form.validate():
        return _rules_page({code: form}, 422)
    try:
        changed = services.update_discovery_rule(current_principal(), code, bool(form.enabled.data), form.params())
    except ValidationFailed as exc:
        return _rules_page({code: form}, refuse_onto(form, exc, rule_field))
    flash(_("Saved: %(rule)s.", rule=changed["name_en"] if current_language() == "en" else changed["name_zh"]),
          "success")
    return redirect(url_for("intake_pages.discovery_rules"), code=303)



# --- the working calendar ------------------------------------------------------------------------


def _calendar_page(form: forms.CalendarDayForm | None = None, status: int = 200, year: int | None = None):
    editable = services.may_set_rules(current_principal())
    year_form = forms.CalendarYearForm(request.args)
    year_form.validate()
    year = year or year_form.value("year") or district_today().year
    return render_template("intake/calendar.html", days=services.calendar_days(year), year=year, editable=editable,
                           form=form or (forms.CalendarDayForm(formdata=None) if editable else None),
                           remove_form=forms.ActionForm(formdata=None), weekday_label=weekday_label), status


@blp.get("/intake/calendar")
@requires(Permission.APPLICATIONS_READ)
def working_calendar():
    """The working calendar that deadlines count by: a year's days off and weekend days worked (the district
    enters them; everyone who reads applications sees them)."""
    return _calendar_page()


@blp.post("/intake/calendar")
@requires(Permission.APPLICATIONS_MANAGE)
def set_calendar_day():
    """Enter or change a day of the working calendar (the district)."""
    form = forms.CalendarDayForm()
    if not form.validate():
        return _calendar_page(form, 422, form.day.data.year if form.day.data else None)
    try:
        row = services.set_calendar_day(current_principal(), form.day.data, form.kind.data, form.name.data)
    except ValidationFailed as exc:
        return _calendar_page(form, refuse_onto(form, exc), form.day.data.year)
    flash(_("Saved: %(day)s, %(kind)s.", day=row.day.isoformat(), kind=label("calendar_day", row.kind)), "success")
    return redirect(url_for("intake_pages.working_calendar", year=row.day.year), code=303)


@blp.post("/intake/calendar/<date:day>/remove")
@requires(Permission.APPLICATIONS_MANAGE)
def remove_calendar_day(day):
    """Take a day out of the working calendar (the district): it is as the week makes it again."""
    if forms.ActionForm().validate():
        services.remove_calendar_day(current_principal(), day)
        flash(_("Removed: %(day)s.", day=day.isoformat()), "success")
    return redirect(url_for("intake_pages.working_calendar", year=day.year), code=303)
