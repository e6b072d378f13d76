"""Visits pages: the alert inbox (late and missed visits, escalations, contract lines and budgets, contracts
ending, certificates expiring), newest first, open ones or all; each alert with links to what it is about
and, while open, a form to acknowledge it with a note on what was done (acknowledged ones show who, when
and the note: an alert is never deleted).

Each view parses a form, calls one visits service with the caller's Principal and renders or redirects
back. A service's refusal (Conflict, ValidationFailed, PermissionDenied) is shown on the page as a
message; the services guarantee that nothing changed.
"""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _

from servicehub.auth.access import current_principal, requires, safe_next_url
from servicehub.auth.permissions import Permission
from servicehub.errors import Conflict, DomainError, PermissionDenied, ValidationFailed
from servicehub.visits import forms, services
from servicehub.web.format import label, last_page

blp = Blueprint("visits_pages", __name__, template_folder="templates")

PAGE_SIZE = 50
REFUSALS = (Conflict, ValidationFailed, PermissionDenied)


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
