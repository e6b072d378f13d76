"""Registry pages: recipients and their need lists (managers), organisations with their contracts and
workers (managers, auditors; a provider admin its own organisation).

Each view parses a form, calls one registry service with the caller's Principal and renders. Scoping
(a town manager's town, a provider's organisation, masked ID numbers) is the services' business: a
view never filters. Field errors from the services are shown next to the fields (422, nothing stored).
"""

from __future__ import annotations

from datetime import date, timedelta

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from wtforms.fields import SelectChoice

from servicehub.auth.access import current_principal, requires
from servicehub.auth.permissions import Permission
from servicehub.catalog import services as catalog
from servicehub.errors import N_, Conflict, DomainError, NotFound, ValidationFailed
from servicehub.i18n import current_language, localized
from servicehub.registry import forms, services
from servicehub.timeutil import district_today
from servicehub.web.format import WEEKDAY_KEYS, label, last_page
from servicehub.web.forms import FilterForm, attach_errors

blp = Blueprint("registry_pages", __name__, template_folder="templates")

PAGE_SIZE = 50
ALL = 10_000  # "every row" for the short lists behind select boxes and detail pages
EXPIRY_WARNING = timedelta(days=30)
# What a need in each status may be set to from the page.
NEED_STATUS_ACTIONS = {
    "open": ("suspended", "closed"),
    "matched": ("suspended", "closed"),
    "active": ("suspended", "closed"),
    "suspended": ("open", "closed"),
    "closed": ("open",),
}
FIELD_ERRORS = (ValidationFailed, Conflict)  # shown next to the fields; other refusals get the error page


def expiry_state(expires_on: date | None, today: date | None = None) -> str:
    """'expired', 'soon' (within 30 days) or '' for a qualification's expiry date."""
    if expires_on is None:
        return ""
    today = today or district_today()
    if expires_on < today:
        return "expired"
    return "soon" if expires_on <= today + EXPIRY_WARNING else ""


def subclass_name(assistance_class, code: str | None) -> str:
    """The page-language name of a subclass code of `assistance_class`."""
    for item in (assistance_class.subclasses if assistance_class else None) or []:
        if item["code"] == code:
            return item.get(f"name_{current_language()}") or item["name_zh"]
    return code or ""


@blp.context_processor
def _registry_helpers():
    return {
        "weekday_keys": WEEKDAY_KEYS,
        "expiry_state": expiry_state,
        "subclass_name": subclass_name,
        "need_status_actions": NEED_STATUS_ACTIONS,
    }


def _page(form) -> int:
    return form.value("page") or 1


def _correct_the_fields() -> str:
    return _("Nothing was saved: please correct the marked fields.")


def _show_refusal(form, exc: DomainError) -> int:
    """Put a service's refusal onto the form (field errors next to their fields); the status to answer."""
    form.other_errors[""] = [_correct_the_fields() if exc.errors else exc.message]
    attach_errors(form, exc.errors)
    return exc.status


def _form_status(form) -> int:
    """The status of a form shown (again): 422 if it was sent and failed its own checks, else 200."""
    if not form.is_submitted():
        return 200
    form.other_errors[""] = [_correct_the_fields()]
    return 422


# --- recipients -----------------------------------------------------------------------------


def _class_choices(blank=None) -> list[SelectChoice]:
    options = [
        SelectChoice(c.code, localized(c, "name")) for c in catalog.list_assistance_classes() if c.active
    ]
    return ([SelectChoice("", blank)] if blank is not None else []) + options


@blp.get("/recipients")
@requires(Permission.RECIPIENTS_READ)
def recipients():
    """Recipients the caller may see, filtered by town, class, status, unmet need and name; paginated."""
    form = forms.RecipientFilterForm(request.args)
    form.town.choices = [SelectChoice("", _("All towns"))] + [
        SelectChoice(t.code, localized(t, "name")) for t in services.list_towns()
    ]
    form.assistance_class.choices = _class_choices(_("Any"))
    form.validate()
    page = _page(form)
    items, total = services.list_recipients(
        current_principal(), **form.filters(), page=page, page_size=PAGE_SIZE
    )
    open_needs = services.open_need_counts(current_principal(), [r.id for r in items])
    return render_template(
        "registry/recipients.html",
        form=form,
        recipients=items,
        total=total,
        page=page,
        last_page=last_page(total, PAGE_SIZE),
        open_needs=open_needs,
    )


def _recipient_form() -> forms.RecipientForm:
    form = forms.RecipientForm()
    classes = [c for c in catalog.list_assistance_classes() if c.active]
    form.assistance_class.choices = [SelectChoice("", "—")] + [
        SelectChoice(c.code, localized(c, "name")) for c in classes
    ]
    form.subclass.choices = [SelectChoice("", "—")] + [
        SelectChoice(item["code"], subclass_name(c, item["code"]), optgroup=localized(c, "name"))
        for c in classes
        for item in c.subclasses
    ]
    form.area.choices = [SelectChoice("", "—")] + [
        SelectChoice(
            a.code,
            localized(a, "name")
            if a.level == "town"
            else f"{localized(a.parent, 'name')} · {localized(a, 'name')}",
        )
        for a in services.recipient_areas(current_principal())
    ]
    return form


@blp.route("/recipients/new", methods=["GET", "POST"])
@requires(Permission.RECIPIENTS_MANAGE)
def new_recipient():
    """Register a recipient; the ID number is checked (GB 11643) and must be new."""
    form = _recipient_form()
    status = 200
    if form.validate_on_submit():
        try:
            recipient = services.register_recipient(current_principal(), form.service_data())
        except FIELD_ERRORS as exc:
            status = _show_refusal(form, exc)
        else:
            flash(_("%(name)s is registered.", name=recipient.name), "success")
            return redirect(url_for("registry_pages.recipient", recipient_id=recipient.id))
    else:
        status = _form_status(form)
    return render_template("registry/recipient_new.html", form=form), status


def _need_form(recipient, **kwargs) -> forms.NeedForm:
    form = forms.NeedForm(**kwargs)
    form.service_type.choices = [SelectChoice("", "—")] + [
        SelectChoice(
            t.code,
            f"{t.code} {localized(t, 'name')}",
            render_kw={
                "data-fill-window_start": t.window_start.strftime("%H:%M") if t.window_start else "",
                "data-fill-window_end": t.window_end.strftime("%H:%M") if t.window_end else "",
                "data-fill-duration_min": str(t.default_duration_min),
            },
            optgroup=localized(t.category, "name"),
        )
        for t in services.service_types_for(recipient)
    ]
    return form


def _render_recipient(recipient, need_form, status: int = 200):
    needs, _total = services.list_needs(current_principal(), recipient_id=recipient.id, page_size=ALL)
    return render_template(
        "registry/recipient.html",
        recipient=recipient,
        needs=needs,
        need_form=need_form,
        status_form=forms.NeedStatusForm(),
    ), status


@blp.get("/recipients/<int:recipient_id>")
@requires(Permission.RECIPIENTS_READ)
def recipient(recipient_id: int):
    """One recipient: details, the need list and (for managers) a form to add a need."""
    found = services.get_recipient(current_principal(), recipient_id)
    return _render_recipient(found, _need_form(found, formdata=None))


@blp.post("/recipients/<int:recipient_id>/needs")
@requires(Permission.RECIPIENTS_MANAGE)
def add_need(recipient_id: int):
    """Add a line to the recipient's need list; the form comes back with the errors if the service refuses."""
    found = services.get_recipient(current_principal(), recipient_id)
    form = _need_form(found)
    if form.validate_on_submit():
        try:
            need = services.create_need(
                current_principal(), {**form.service_data(), "recipient_id": found.id}
            )
        except FIELD_ERRORS as exc:
            return _render_recipient(found, form, _show_refusal(form, exc))
        flash(
            _("Added %(service)s to the need list.", service=localized(need.service_type, "name")), "success"
        )
        return redirect(url_for("registry_pages.recipient", recipient_id=found.id, _anchor="needs"))
    return _render_recipient(found, form, _form_status(form))


@blp.route("/needs/<int:need_id>/edit", methods=["GET", "POST"])
@requires(Permission.RECIPIENTS_MANAGE)
def edit_need(need_id: int):
    """Change a need's frequency, days, window, duration, priority, dates or notes."""
    need = services.get_need(current_principal(), need_id)
    form = forms.NeedEditForm(obj=need)
    status = 200
    if form.validate_on_submit():
        try:
            services.update_need(current_principal(), need.id, form.service_data())
        except FIELD_ERRORS as exc:
            status = _show_refusal(form, exc)
        else:
            flash(_("The need is saved."), "success")
            return redirect(
                url_for("registry_pages.recipient", recipient_id=need.recipient_id, _anchor="needs")
            )
    else:
        status = _form_status(form)
    return render_template("registry/need_edit.html", need=need, form=form), status


@blp.post("/needs/<int:need_id>/status")
@requires(Permission.RECIPIENTS_MANAGE)
def need_status(need_id: int):
    """Suspend, close or reopen a need."""
    need = services.get_need(current_principal(), need_id)
    form = forms.NeedStatusForm()
    if form.validate_on_submit():
        try:
            services.update_need(current_principal(), need.id, {"status": form.status.data})
        except FIELD_ERRORS as exc:
            flash(exc.message, "error")
        else:
            flash(
                _("The need is now: %(status)s.", status=label("need_status", form.status.data)),
                "success",
            )
    else:
        flash(_("Choose what to do with the need."), "error")
    return redirect(
        url_for("registry_pages.recipient", recipient_id=need.recipient_id, _anchor=f"need-{need.id}")
    )


# --- organisations and contracts ------------------------------------------------------------


@blp.get("/organisations")
@requires(Permission.REGISTRY_READ)
def organisations():
    """Every organisation (a provider admin is taken to its own)."""
    principal = current_principal()
    if principal.is_provider and principal.organisation_id:
        return redirect(url_for("registry_pages.organisation", organisation_id=principal.organisation_id))
    form = FilterForm(request.args)
    form.validate()
    page = _page(form)
    items, total = services.list_organisations(principal, q=form.value("q"), page=page, page_size=PAGE_SIZE)
    return render_template(
        "registry/organisations.html",
        form=form,
        organisations=items,
        total=total,
        page=page,
        last_page=last_page(total, PAGE_SIZE),
    )


def _class_names() -> dict[str, str]:
    return {c.code: localized(c, "name") for c in catalog.list_assistance_classes()}


@blp.get("/organisations/<int:organisation_id>")
@requires(Permission.REGISTRY_READ)
def organisation(organisation_id: int):
    """One organisation: its details, contracts (budget, funding, lines, areas, classes) and workers."""
    principal = current_principal()
    found = services.get_organisation(principal, organisation_id)
    contracts, _total = services.list_contracts(
        principal, organisation_id=found.id, sort="-start_date", page_size=ALL
    )
    workers, _total = services.list_workers(principal, organisation_id=found.id, page_size=ALL)
    return render_template(
        "registry/organisation.html",
        organisation=found,
        contracts=contracts,
        workers=workers,
        class_names=_class_names(),
    )


def _contract_page(contract_id: int, posted: forms.BillingTermsForm | None = None, posted_line: int | None = None,
                   status: int = 200):
    principal = current_principal()
    found = services.get_contract(principal, contract_id)
    billing_forms = {}
    if principal.can(Permission.REGISTRY_MANAGE) and principal.town_id is None:  # the district's business
        billing_forms = {line.id: posted if line.id == posted_line else forms.BillingTermsForm.of(line, formdata=None)
                         for line in found.lines}
    return render_template("registry/contract.html", contract=found, class_names=_class_names(),
                           billing_forms=billing_forms), status


@blp.get("/contracts/<int:contract_id>")
@requires(Permission.REGISTRY_READ)
def contract(contract_id: int):
    """One contract with its period, budget, funding sources, contracted lines (with their billing terms), areas
    and classes; district managers change a line's billing terms here."""
    return _contract_page(contract_id)


@blp.post("/contracts/<int:contract_id>/lines/<int:line_id>/billing")
@requires(Permission.REGISTRY_MANAGE)
def update_billing(contract_id: int, line_id: int):
    """Change how a contract line pays a verified visit; then back to the contract."""
    principal = current_principal()
    line = next((li for li in services.get_contract(principal, contract_id).lines if li.id == line_id), None)
    if line is None:
        raise NotFound(N_("No such line of the contract."), {"line_id": ["Unknown."]})
    form = forms.BillingTermsForm.of(line)
    if not form.validate_on_submit():
        return _contract_page(contract_id, form, line_id, _form_status(form))
    try:
        changed = services.update_line_billing(principal, contract_id, line_id, form.terms())
    except FIELD_ERRORS as exc:
        form.other_errors[""] = [_correct_the_fields() if exc.errors else exc.message]
        attach_errors(form, {forms.BillingTermsForm.FIELDS.get(name, name): messages
                             for name, messages in exc.errors.items()})
        return _contract_page(contract_id, form, line_id, exc.status)
    flash(_("Billing terms of %(service)s saved: %(billing)s.", service=changed.service_type.code,
            billing=label("billing", changed.billing)), "success")
    return redirect(url_for("registry_pages.contract", contract_id=contract_id, _anchor=f"line-{line_id}"), code=303)


# --- workers --------------------------------------------------------------------------------


@blp.get("/workers")
@requires(Permission.REGISTRY_READ)
def workers():
    """Workers the caller may see (a provider: its own), optionally of one organisation."""
    principal = current_principal()
    form = forms.WorkerFilterForm(request.args)
    if not principal.is_provider:
        form.organisation_id.choices = forms.organisation_choices(
            services.list_organisations(principal, page_size=ALL)[0], _("All organisations"))
    form.validate()
    page = _page(form)
    items, total = services.list_workers(principal, **form.filters(), page=page, page_size=PAGE_SIZE)
    return render_template(
        "registry/workers.html",
        form=form,
        workers=items,
        total=total,
        page=page,
        last_page=last_page(total, PAGE_SIZE),
    )


@blp.get("/workers/<int:worker_id>")
@requires(Permission.REGISTRY_READ)
def worker(worker_id: int):
    """One worker: details, qualifications with expiry, weekly availability and limits."""
    found = services.get_worker(current_principal(), worker_id)
    return render_template("registry/worker.html", worker=found)


def _worker_form(found=None, organisation_id: int | None = None) -> tuple[forms.WorkerForm, list]:
    principal = current_principal()
    qualifications = catalog.list_qualifications()
    form = forms.worker_form(qualifications, found)
    form.start_station_id.choices = [SelectChoice("", _("Home (coordinates below)"))] + [
        SelectChoice(str(s.id), localized(s, "name"))
        for s in services.list_stations(principal, active=True, page_size=ALL)[0]
    ]
    if found is None and not principal.is_provider:
        form.organisation_id.choices = [SelectChoice("", "—")] + [
            SelectChoice(str(o.id), o.name_zh) for o in services.list_active_organisations()
        ]
        if organisation_id and not form.is_submitted():
            form.organisation_id.data = organisation_id
    return form, qualifications


@blp.route("/workers/new", methods=["GET", "POST"])
@requires(Permission.WORKERS_MANAGE)
def new_worker():
    """Add a worker (a provider admin: to its own organisation)."""
    organisation_id = request.args.get("organisation_id", type=int)
    form, qualifications = _worker_form(organisation_id=organisation_id)
    status = 200
    if form.validate_on_submit():
        try:
            found = services.create_worker(
                current_principal(), form.service_data(qualifications, creating=True)
            )
        except FIELD_ERRORS as exc:
            status = _show_refusal(form, exc)
        else:
            flash(_("%(name)s is added.", name=found.name), "success")
            return redirect(url_for("registry_pages.worker", worker_id=found.id))
    else:
        status = _form_status(form)
    return render_template("registry/worker_form.html", form=form, worker=None), status


@blp.route("/workers/<int:worker_id>/edit", methods=["GET", "POST"])
@requires(Permission.WORKERS_MANAGE)
def edit_worker(worker_id: int):
    """Change a worker's details, qualifications, availability and limits, or deactivate them."""
    found = services.get_worker(current_principal(), worker_id)
    form, qualifications = _worker_form(found)
    status = 200
    if form.validate_on_submit():
        try:
            services.update_worker(
                current_principal(), found.id, form.service_data(qualifications, creating=False)
            )
        except FIELD_ERRORS as exc:
            status = _show_refusal(form, exc)
        else:
            flash(_("The worker is saved."), "success")
            return redirect(url_for("registry_pages.worker", worker_id=found.id))
    else:
        status = _form_status(form)
    return render_template("registry/worker_form.html", form=form, worker=found), status


@blp.post("/workers/<int:worker_id>/active")
@requires(Permission.WORKERS_MANAGE)
def toggle_worker(worker_id: int):
    """Deactivate or reactivate a worker."""
    found = services.get_worker(current_principal(), worker_id)
    updated = services.update_worker(current_principal(), found.id, {"active": not found.active})
    flash(
        _("%(name)s is active again.", name=updated.name)
        if updated.active
        else _("%(name)s is deactivated.", name=updated.name),
        "success",
    )
    return redirect(url_for("registry_pages.worker", worker_id=found.id))
