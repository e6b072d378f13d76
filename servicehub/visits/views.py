"""Visits pages: the alert inbox (late and missed visits, escalations, contract lines and budgets, contracts
ending, certificates expiring, codes failed, cards reissued), newest first, open ones or all; each alert with
links to what it is about and, while open, a form to acknowledge it with a note on what was done (acknowledged
ones show who, when and the note: an alert is never deleted).

The exception queue (EVV 异常): the visits whose records depart from their plan, each exception with its code in
words and its figures, the provider's explanation and the bureau's decision; a provider admin explains them
(a reason and a note, one by one or for several ticked at once), a manager approves or rejects them; an
exception's page shows its steps, the visit's ledger entries and links to the visit's day.

A recipient's confirmation cards: the list of cards issued (never a code or the secret), and the button that
prints a new one (the PDF is answered once, as a download; the old card stops working).

Each view parses a form, calls one visits service with the caller's Principal and renders or redirects
back. A service's refusal (Conflict, ValidationFailed, PermissionDenied) is shown on the page as a
message in the page's language, chosen by its stable code; the services guarantee that nothing changed.
"""

from __future__ import annotations

from flask import Blueprint, Response, flash, redirect, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _

from servicehub.auth.access import current_principal, requires, safe_next_url
from servicehub.auth.permissions import Permission
from servicehub.errors import (
    Conflict,
    DomainError,
    NotFound,
    PermissionDenied,
    ValidationFailed,
    page_message,
)
from servicehub.registry import services as registry
from servicehub.visits import forms, queue, services
from servicehub.web.format import label, last_page, listing, units

blp = Blueprint("visits_pages", __name__, template_folder="templates")

PAGE_SIZE = 50
REFUSALS = (Conflict, ValidationFailed, PermissionDenied)
ALL = 500  # organisations and workers offered as filters


def refusal_message(exc: DomainError) -> str:
    """A service's refusal in the page's language where its code is known, otherwise its own sentence."""
    if isinstance(exc, PermissionDenied):
        return _("Not allowed: %(detail)s", detail=exc.message)
    if exc.code == "already_acknowledged":
        return _("Nothing was changed: the alert has already been acknowledged.")
    if "note" in exc.errors:
        return _("Not acknowledged: %(detail)s", detail=_("Say what was done."))
    return exc.message


def _back(default: str):
    """Where a step goes back to: the page it was taken on (a path of this site), else `default`."""
    return redirect(safe_next_url(request.form.get("next")) or default, code=303)


def _here() -> str:
    """This page's address, for the forms on it to come back to."""
    return request.full_path.rstrip("?")


def _day_link(principal, alert) -> dict | None:
    """The roster of the day of the alert's visit (whoever may see the alert may open its day)."""
    visit = alert.visit
    if visit is None or not principal.can(Permission.ROSTERS_READ):
        return None
    own = principal.is_provider and principal.organisation_id == visit.organisation_id
    url = url_for("scheduling_pages.day", date=visit.service_date.isoformat(),
                  organisation_id=None if own else visit.organisation_id)
    return {"key": "day", "text": _("Roster of %(date)s", date=visit.service_date.isoformat()), "url": url}


def describe(alert) -> str:
    """The alert in the page's language, from the facts it carries (its stored sentence if they are missing)."""
    d = dict(alert.details or {})
    english = str(get_locale()) == "en"
    for name in ("service", "qualification"):
        d[name] = d.get(f"{name}_en" if english else f"{name}_zh", "")
    sentences = {
        "late": _("%(recipient)s: %(service)s on %(date)s has not started (window %(window)s)."),
        "missed": _("%(recipient)s: %(service)s on %(date)s was not done in its window %(window)s."),
        "missed_streak": _("%(recipient)s: three visits in a row were missed (the latest %(service)s on %(date)s)."),
        "line_80": _("%(contract)s, %(service)s: %(delivered)s of %(contracted)s contracted units delivered."),
        "line_100": _("%(contract)s, %(service)s: %(delivered)s of %(contracted)s contracted units delivered."),
        "budget_80": _("%(contract)s: ¥%(spent)s of the ¥%(budget)s budget delivered."),
        "budget_100": _("%(contract)s: ¥%(spent)s of the ¥%(budget)s budget delivered."),
        "contract_ending": _("%(contract)s ends on %(end_date)s."),
        "qualification_expiring": _("%(worker)s: the %(qualification)s certificate expires on %(expires_on)s."),
        "application_overdue": _("Application %(reference)s (%(name)s): nobody got in touch by %(due)s."),
        "documents_due": _("Application %(reference)s (%(name)s): still missing %(documents)s (due %(due)s)."),
        "code_failed": _("%(recipient)s: %(tries)s wrong confirmation codes were tried for %(service)s on %(date)s "
                         "(by %(by)s)."),
        "card_reissued": _("%(recipient)s: confirmation card #%(card_no)s, printed by %(by)s, replaces card "
                           "#%(replaced)s, which no longer works.") if d.get("replaced") else
        _("%(recipient)s: confirmation card #%(card_no)s was printed by %(by)s, the organisation paid by the visits "
          "it confirms."),
    }
    if "spent_fen" in d:
        d["spent"], d["budget"] = f"{d['spent_fen'] / 100:,.2f}", f"{d['budget_fen'] / 100:,.2f}"
    try:
        return sentences[alert.kind] % d
    except (KeyError, TypeError, ValueError):
        return alert.message


def links_for(principal, alert) -> list[dict]:
    """The pages an alert is about that the caller may open: the visit's day, the contract, the worker."""
    links = [link for link in (_day_link(principal, alert),) if link]
    if alert.kind == "code_failed" and principal.can(Permission.EXCEPTIONS_READ):
        links.append({"key": "exceptions", "text": _("Exceptions"),
                      "url": url_for("visits_pages.exceptions", code="code_failed", status="all")})
    if alert.kind == "card_reissued" and alert.recipient_id and principal.can(Permission.RECIPIENTS_READ):
        links.append({"key": "recipient", "text": _("Recipient"),
                      "url": url_for("registry_pages.recipient", recipient_id=alert.recipient_id)})
    application_id = (alert.details or {}).get("application_id")
    if application_id and principal.can(Permission.APPLICATIONS_READ):
        links.append({"key": "application", "text": _("Application"),
                      "url": url_for("intake_pages.application", application_id=application_id)})
    if principal.can(Permission.REGISTRY_READ):
        if alert.contract_id:
            links.append({"key": "contract", "text": _("Contract"),
                          "url": url_for("registry_pages.contract", contract_id=alert.contract_id)})
        if alert.worker_id:
            links.append({"key": "worker", "text": _("Worker"),
                          "url": url_for("registry_pages.worker", worker_id=alert.worker_id)})
    return links


@blp.get("/alerts")
@requires(Permission.ALERTS_READ)
def alerts():
    """The caller's alert inbox, newest first: open ones (or all), of one kind or every kind."""
    principal = current_principal()
    form = forms.AlertFilterForm(request.args)
    form.validate()
    page = form.value("page") or 1
    items, total = services.list_alerts(principal, **form.filters(), page=page, page_size=PAGE_SIZE)
    return render_template(
        "visits/alerts.html",
        form=form,
        alerts=items,
        links={alert.id: links_for(principal, alert) for alert in items},
        total=total,
        page=page,
        last_page=last_page(total, PAGE_SIZE),
        open_only=form.filters()["open_only"],
        can_acknowledge=principal.can(Permission.ALERTS_ACK),
        ack_form=forms.AcknowledgeForm(formdata=None),
        here=_here(),
        describe=describe,
    )


@blp.post("/alerts/<int:alert_id>/acknowledge")
@requires(Permission.ALERTS_ACK)
def acknowledge(alert_id: int):
    """Acknowledge an alert with a note on what was done; it stays in the inbox under "all"."""
    form = forms.AcknowledgeForm()
    if not form.validate_on_submit():
        for message in form.note.errors:
            flash(_("Not acknowledged: %(detail)s", detail=message), "error")
        return _back(url_for("visits_pages.alerts"))
    try:
        alert = services.acknowledge(current_principal(), alert_id, form.note.data)
    except REFUSALS as exc:
        flash(refusal_message(exc), "error")
    else:
        flash(_("Acknowledged: %(kind)s — %(message)s", kind=label("alert_kind", alert.kind),
                message=describe(alert)), "success")
    return _back(url_for("visits_pages.alerts"))


# --- the exception queue -------------------------------------------------------------------------------------------


def exception_refusal(exc: DomainError) -> str:
    """A queue service's refusal in the page's language, chosen by its stable code (never by its English words)."""
    status = label("exception_status", (exc.errors.get("status") or [""])[0])
    if exc.code == "not_open":
        return _("Nothing was changed: the exception is no longer waiting for an explanation (it is “%(status)s”).",
                 status=status)
    if exc.code == "not_resolved":
        return _("Nothing was changed: only an exception the provider has explained can be decided (this one is "
                 "“%(status)s”).", status=status)
    if exc.code == "not_the_bureau":
        return _("Not allowed: the bureau decides exceptions, not the organisation whose visits they are.")
    if exc.code == "not_the_provider":
        return _("Not allowed: only the organisation's provider admin explains its exceptions.")
    if exc.code == "no_correction":
        return _("Nothing was changed: the correction this exception is about is gone.")
    if isinstance(exc, NotFound):
        return _("Nothing was changed: one of the exceptions is not in your queue.")
    if "reason_code" in exc.errors:
        return _("Nothing was changed: choose a reason.")
    if "note" in exc.errors:
        return _("Nothing was changed: say what happened in the note.")
    if isinstance(exc, PermissionDenied):
        return _("Not allowed: %(detail)s", detail=page_message(exc.message))
    return page_message(exc.message)


def _minutes(value) -> str:
    """Minutes as a page shows them: 17.0 -> '17', 7.5 -> '7.5'."""
    return units(value) if isinstance(value, int | float) else str(value)


def facts(exception) -> str:
    """The figures behind an exception, in the page's language ('' when the code says it all)."""
    d = exception.details or {}
    code = exception.code
    try:
        if code in ("late_start", "late_end"):
            return _("%(minutes)s min after the expected time", minutes=_minutes(d["minutes"]))
        if code == "early_end":
            return _("%(minutes)s min before the expected end", minutes=_minutes(d["minutes"]))
        if code in ("short_visit", "long_visit"):
            return _("%(minutes)s min served of %(planned)s planned (limit %(threshold)s)",
                     minutes=_minutes(d["minutes"]), planned=_minutes(d["planned"]),
                     threshold=_minutes(d["threshold"]))
        if code in ("far_check_in", "far_check_out"):
            return _("%(metres)s m from the address", metres=units(d["metres"]))
        if code == "code_failed":
            return _("%(tries)s wrong codes tried", tries=d["tries"])
        if code == "manual_entry":
            parts = []
            if d.get("recorded_by"):
                parts.append(_("recorded by %(names)s", names=listing(d["recorded_by"])))
            if d.get("typed_position"):
                parts.append(_("position typed in (%(entries)s)",
                               entries=listing(d["typed_position"], lambda kind: label("record_kind", kind))))
            return listing(parts)
        if code == "edited_times":
            return _("corrected: the visit is %(minutes)s min longer", minutes=_minutes(d["minutes"])) \
                if d["minutes"] >= 0 else _("corrected: the visit is %(minutes)s min shorter",
                                            minutes=_minutes(-d["minutes"]))
        if code == "late_submission":
            return listing([_("%(entry)s reached the ledger %(hours)s h late", entry=label("record_kind", kind),
                              hours=units(hours)) for kind, hours in (d.get("hours") or {}).items()])
        if code == "overlap":
            return _("overlaps visit %(visits)s", visits=listing([f"#{v}" for v in d["visits"]]))
        if code == "missed":
            return label("missed_reason", d["reason"]) if d.get("reason") else ""
        if code == "cancelled_late":
            return _("called off %(hours)s h before the expected start", hours=units(d["hours_before"]))
        if code == "frozen_month_correction":
            return _("correction by %(by)s: %(note)s", by=d.get("by", ""), note=d.get("note", ""))
    except (KeyError, TypeError, ValueError):
        return ""
    return ""


def _rows_actionable(principal, items) -> set[int]:
    """The exceptions on the page the caller may act on now: a provider admin those still to explain (or to
    explain again), the bureau those explained."""
    if principal.can(Permission.EXCEPTIONS_RESOLVE):
        return {e.id for e in items if e.status in queue.RESOLVABLE}
    if principal.can(Permission.EXCEPTIONS_DECIDE):
        return {e.id for e in items if e.status == "resolved"}
    return set()


def _waiting_for(principal) -> str:
    """What the queue shows first: a provider admin what it has not explained yet (rejected ones are under their
    own filter: most were settled as unpaid long ago), the bureau what it has to decide, an auditor every undecided
    one."""
    if principal.can(Permission.EXCEPTIONS_RESOLVE):
        return "open"
    if principal.can(Permission.EXCEPTIONS_DECIDE):
        return "resolved"
    return "undecided"


@blp.get("/exceptions")
@requires(Permission.EXCEPTIONS_READ)
def exceptions():
    """The exception queue the caller may see, the oldest visit first: by default what waits for the caller (see
    `_waiting_for`); counts by code at the top; a provider admin explains, the bureau decides, one by one or for
    several ticked."""
    principal = current_principal()
    args = request.args.copy()
    args.setdefault("status", _waiting_for(principal))
    form = forms.ExceptionFilterForm(args)
    form.validate()
    organisations = [] if principal.is_provider else registry.list_organisations(principal, page_size=ALL)[0]
    workers = registry.list_workers(principal, organisation_id=form.value("organisation_id"), sort="name",
                                    page_size=ALL)[0]
    form.set_places(organisations, workers)
    filters = form.filters()
    page = form.value("page") or 1
    items, total = queue.list_exceptions(principal, **filters, page=page, page_size=PAGE_SIZE)
    counts = queue.counts_by_code(principal, **{k: v for k, v in filters.items() if k != "code"})
    return render_template(
        "visits/exceptions.html",
        form=form,
        exceptions=items,
        total=total,
        page=page,
        last_page=last_page(total, PAGE_SIZE),
        counts={code: sum(by_status.values()) for code, by_status in counts.items()},
        filters=filters,
        show_organisation=not principal.is_provider,
        can_resolve=principal.can(Permission.EXCEPTIONS_RESOLVE),
        can_decide=principal.can(Permission.EXCEPTIONS_DECIDE),
        actionable=_rows_actionable(principal, items),
        resolve_form=forms.ResolveForm(formdata=None),
        decide_form=forms.DecideForm(formdata=None),
        here=_here(),
        facts=facts,
    )


def _visit_links(principal, exception) -> list[dict]:
    """Where to read more of the exception's visit: its day's roster, its records in the reports."""
    visit = exception.visit
    links = []
    if principal.can(Permission.ROSTERS_READ):
        own = principal.is_provider and principal.organisation_id == visit.organisation_id
        links.append({"key": "day", "text": _("Roster of %(date)s", date=visit.service_date.isoformat()),
                      "url": url_for("scheduling_pages.day", date=visit.service_date.isoformat(),
                                     organisation_id=None if own else visit.organisation_id)})
    if principal.can(Permission.REPORTS_READ):
        day = visit.service_date.isoformat()
        links.append({"key": "records", "text": _("The worker's records of the day"),
                      "url": url_for("evaluation_pages.records", **{"from": day, "to": day},
                                     organisation_id=visit.organisation_id, worker_id=visit.worker_id,
                                     service_type=visit.service_type.code)})
    if principal.can(Permission.RECORDS_READ):
        links.append({"key": "ledger", "text": _("Ledger entries (JSON)"),
                      "url": url_for("visits.Records", visit_id=visit.id)})
    if principal.can(Permission.RECIPIENTS_READ):
        links.append({"key": "recipient", "text": _("Recipient"),
                      "url": url_for("registry_pages.recipient", recipient_id=exception.recipient_id)})
    return links


@blp.get("/exceptions/<int:exception_id>")
@requires(Permission.EXCEPTIONS_READ)
def exception(exception_id: int):
    """One exception: the visit, the figures, the explanation and the decision, its steps, the visit's ledger
    entries, and the step the caller may take."""
    principal = current_principal()
    found = queue.get_exception(principal, exception_id)
    entries = services.list_records(principal, visit_id=found.visit_id, page_size=ALL)[0] \
        if principal.can(Permission.RECORDS_READ) else []
    return render_template(
        "visits/exception.html",
        e=found,
        entries=entries,
        links=_visit_links(principal, found),
        can_resolve=principal.can(Permission.EXCEPTIONS_RESOLVE),
        can_decide=principal.can(Permission.EXCEPTIONS_DECIDE),
        actionable=_rows_actionable(principal, [found]),
        resolve_form=forms.ResolveForm(formdata=None, reason_code=found.reason_code or "",
                                       note=found.resolution_note or None),
        decide_form=forms.DecideForm(formdata=None),
        here=_here(),
        facts=facts,
    )


def _form_refused(form) -> None:
    """Flash a form's own errors (a missing reason or note, nothing ticked)."""
    for name in ("exception_ids", "reason_code", "decision", "note"):
        field = form._fields.get(name)
        for message in field.errors if field is not None else ():
            flash(_("Nothing was changed: %(detail)s", detail=message), "error")


def _explained(items) -> str:
    return _("%(count)d exceptions explained; they now wait for the bureau's decision.", count=len(items))


@blp.post("/exceptions/<int:exception_id>/resolve")
@requires(Permission.EXCEPTIONS_RESOLVE)
def resolve(exception_id: int):
    """The provider explains one exception with a reason and a note."""
    form = forms.ResolveForm()
    if not form.validate_on_submit():
        _form_refused(form)
        return _back(url_for("visits_pages.exception", exception_id=exception_id))
    try:
        done = queue.resolve(current_principal(), exception_id, form.reason_code.data, form.note.data)
    except (*REFUSALS, NotFound) as exc:
        flash(exception_refusal(exc), "error")
    else:
        flash(_("Explained: %(code)s (%(reason)s); it now waits for the bureau's decision.",
                code=label("exception_code", done.code), reason=label("resolution_reason", done.reason_code)),
              "success")
    return _back(url_for("visits_pages.exceptions"))


@blp.post("/exceptions/resolve")
@requires(Permission.EXCEPTIONS_RESOLVE)
def resolve_many():
    """One explanation for every ticked exception: all of them, or none (the refusal says why)."""
    form = forms.BulkResolveForm()
    if not form.validate_on_submit():
        _form_refused(form)
        return _back(url_for("visits_pages.exceptions"))
    try:
        done = queue.resolve_many(current_principal(), form.exception_ids.data, form.reason_code.data, form.note.data)
    except (*REFUSALS, NotFound) as exc:
        flash(exception_refusal(exc), "error")
    else:
        flash(_explained(done), "success")
    return _back(url_for("visits_pages.exceptions"))


def _decided(items, approve: bool) -> str:
    if approve:
        return _("%(count)d exceptions approved: these visits may be paid once nothing else stands in the way.",
                 count=len(items))
    return _("%(count)d exceptions rejected: the provider sees your note and may explain them again.",
             count=len(items))


@blp.post("/exceptions/<int:exception_id>/decide")
@requires(Permission.EXCEPTIONS_DECIDE)
def decide(exception_id: int):
    """The bureau approves or rejects one explained exception (a note is required to reject)."""
    form = forms.DecideForm()
    if not form.validate_on_submit():
        _form_refused(form)
        return _back(url_for("visits_pages.exception", exception_id=exception_id))
    approve = form.decision.data == "approve"
    try:
        done = queue.decide(current_principal(), exception_id, approve, form.note.data or "")
    except (*REFUSALS, NotFound) as exc:
        flash(exception_refusal(exc), "error")
    else:
        flash(_decided([done], approve), "success")
    return _back(url_for("visits_pages.exceptions"))


@blp.post("/exceptions/decide")
@requires(Permission.EXCEPTIONS_DECIDE)
def decide_many():
    """One decision for every ticked exception: all of them, or none."""
    form = forms.BulkDecideForm()
    if not form.validate_on_submit():
        _form_refused(form)
        return _back(url_for("visits_pages.exceptions"))
    approve = form.decision.data == "approve"
    try:
        done = queue.decide_many(current_principal(), form.exception_ids.data, approve, form.note.data or "")
    except (*REFUSALS, NotFound) as exc:
        flash(exception_refusal(exc), "error")
    else:
        flash(_decided(done, approve), "success")
    return _back(url_for("visits_pages.exceptions"))


# --- confirmation cards ----------------------------------------------------------------------------------------


@blp.get("/recipients/<int:recipient_id>/cards")
@requires(Permission.CARDS_ISSUE)
def cards(recipient_id: int):
    """A recipient's confirmation cards, newest first (never a code): the part the recipient's page loads
    (?part=1), or a page of its own."""
    principal = current_principal()
    found = services.list_cards(principal, recipient_id)
    if request.args.get("part"):
        return render_template("visits/_card_list.html", cards=found, recipient_id=recipient_id)
    return render_template("visits/cards.html", cards=found, recipient=registry.find_recipient(principal, recipient_id))


@blp.post("/recipients/<int:recipient_id>/cards")
@requires(Permission.CARDS_ISSUE)
def issue_card(recipient_id: int):
    """Print a new confirmation card: the PDF, as a download (its codes are printed nowhere else); the old card
    stops working at once."""
    back = url_for("registry_pages.recipient", recipient_id=recipient_id, _anchor="cards")
    form = forms.StepForm()
    if not form.validate_on_submit():
        flash(_("Not printed: the page had expired; try again."), "error")
        return redirect(back, code=303)
    try:
        card, pdf = services.issue_card(current_principal(), recipient_id)
    except REFUSALS as exc:
        flash(_("Not printed: %(detail)s", detail=page_message(exc.message)), "error")
        return redirect(back, code=303)
    return Response(pdf, mimetype="application/pdf", headers={
        "Content-Disposition": f'attachment; filename="confirmation-card-{recipient_id}-{card.card_no}.pdf"',
        "Cache-Control": "no-store", "X-Card-No": str(card.card_no)})
