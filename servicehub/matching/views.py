"""Matching pages: the managers' unmet-needs queue (run matching; each need's proposal with its score
breakdown and alternatives, or the rules that rule every organisation out; offer one or many, lock,
choose an alternative, re-offer overdue offers) and the referrals pages (a provider admin's inbox of
offers to accept or decline and the referrals it serves; the list everyone else may read; one referral
with its history).

Each view parses a form, calls one matching service with the caller's Principal and renders or
redirects back. A service's refusal (Conflict, ValidationFailed, PermissionDenied) is shown on the
page as a message or a field error; the services guarantee that nothing changed.
"""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from wtforms.fields import SelectChoice

from servicehub.auth.access import current_principal, requires, safe_next_url
from servicehub.auth.permissions import Permission
from servicehub.catalog import services as catalog
from servicehub.errors import Conflict, DomainError, NotFound, PermissionDenied, ValidationFailed
from servicehub.i18n import localized
from servicehub.matching import forms, services
from servicehub.registry import services as registry
from servicehub.registry.forms import organisation_choices
from servicehub.web.format import choices, label, last_page, percent, units
from servicehub.web.forms import attach_errors

blp = Blueprint("matching_pages", __name__, template_folder="templates")

PAGE_SIZE = 50
OVERDUE_SHOWN = 50  # overdue offers listed above the queue
ALL = 10_000  # "every row" for the short lists behind select boxes
REFUSALS = (Conflict, ValidationFailed, PermissionDenied)
FACTORS = ("distance", "performance", "continuity", "price", "load")  # the order a breakdown is shown in
# The permission each lifecycle step's page route needs (the services check who may act on which referral).
STEP_PERMISSIONS = {
    "offer": Permission.MATCHING_RUN,
    "withdraw": Permission.MATCHING_RUN,
    "accept": Permission.REFERRALS_RESPOND,
    "decline": Permission.REFERRALS_RESPOND,
    "suspend": Permission.REFERRALS_SERVE,
    "resume": Permission.REFERRALS_SERVE,
    "close": Permission.REFERRALS_SERVE,
}


# --- how values are shown ---------------------------------------------------------------------


def factor_value(name: str, value) -> str:
    """What a score factor measured, in words: '2.4 km', 'not evaluated', '×1.08 of reference' …"""
    if name == "distance":
        return _("no base") if value is None else _("%(km)s km", km=units(round(value, 1)))
    if name == "performance":
        return _("not evaluated") if value is None else percent(value)
    if name == "continuity":
        return _("already serves the recipient") if value else _("new to the recipient")
    if name == "price":
        return "—" if value is None else _("%(share)s of the reference price", share=percent(value))
    if name == "load":
        return _("%(n)s referrals per worker", n=units(value))
    return "" if value is None else str(value)


def weight_shares(breakdown: dict) -> dict[str, float]:
    """Each factor's weight as a share of all the weights (they are normalised by their sum)."""
    total = sum(f.get("weight") or 0 for f in breakdown.values()) or 1.0
    return {name: (f.get("weight") or 0) / total for name, f in breakdown.items()}


def steps_for(referral) -> list[str]:
    """The lifecycle steps whose buttons the caller sees on `referral` now (the services decide in the end)."""
    principal = current_principal()
    return [
        name
        for name, action in services.ACTIONS.items()
        if referral.status in action.sources and principal.can(STEP_PERMISSIONS[name])
    ]


def history_details(entry) -> list[str]:
    """What an audit entry of a referral says, in words: its change of state, the reason, a lock."""
    if entry.action not in ("create", "update"):
        return []  # a step's event: "What" names it; the row change logged with it has the details
    changes = entry.changes or {}
    lines = []
    if "status" in changes:
        lines.append(" → ".join(label("referral_status", s) for s in changes["status"] if s))
    if "reason" in changes and changes["reason"][1]:
        lines.append(_("Reason: %(reason)s", reason=changes["reason"][1]))
    if "locked" in changes and entry.action == "update":
        lines.append(_("Locked") if changes["locked"][1] else _("Unlocked"))
    return lines


def refusal_message(exc: DomainError) -> str:
    """A service's refusal in the page's language where its code is known, otherwise its own sentence."""
    if isinstance(exc, PermissionDenied):
        return _("Not allowed: %(detail)s", detail=exc.message)
    if exc.code in forms.LABELS["rule"]:
        return _("Refused — %(rule)s: %(detail)s", rule=label("rule", exc.code), detail=exc.message)
    status = (exc.errors.get("status") or [None])[0]
    if status in forms.LABELS["referral_status"]:
        return _("Nothing was changed: the referral is now “%(status)s”.", status=label("referral_status", status))
    if exc.code == "no_eligible_organisation":
        return _("No other organisation can serve this need now; the offer stays as it is.")
    need = (exc.errors.get("need_id") or [None])[0]
    if need == "no_eligible_organisation":
        return _("No other organisation can serve this need now; it is back in the unmet-needs queue.")
    if need:
        return _("Nothing was changed: the need is now “%(status)s”.", status=label("need_status", need))
    return exc.message


@blp.context_processor
def _matching_helpers():
    return {
        "factors": FACTORS,
        "factor_value": factor_value,
        "weight_shares": weight_shares,
        "steps_for": steps_for,
        "history_details": history_details,
        "needs_reason": lambda step: services.ACTIONS[step].needs_reason,
    }


def _back(default: str):
    """Where a step goes back to: the page it was taken on (a path of this site), else `default`."""
    return redirect(safe_next_url(request.form.get("next")) or default, code=303)


def _town_choices(blank: str) -> list[SelectChoice]:
    return [SelectChoice("", blank)] + [SelectChoice(t.code, localized(t, "name")) for t in registry.list_towns()]


def _summary(referral) -> dict:
    need = referral.need
    return {
        "recipient": need.recipient.name,
        "service": localized(need.service_type, "name"),
        "organisation": referral.organisation.short_name or localized(referral.organisation, "name"),
    }


# --- the unmet-needs queue --------------------------------------------------------------------


def _run_form(**kwargs) -> forms.RunForm:
    form = forms.RunForm(**kwargs)
    form.town.choices = _town_choices(_("All towns"))
    return form


def _here() -> str:
    """This page's address, for the forms on it to come back to."""
    return request.full_path.rstrip("?")


@blp.get("/matching")
@requires(Permission.MATCHING_RUN)
def queue():
    """Open needs, urgent first: each with its proposal (score and why) and alternatives, or why none fits."""
    principal = current_principal()
    form = forms.QueueFilterForm(request.args)
    form.town.choices = _town_choices(_("All towns"))
    form.service_type.choices = [SelectChoice("", _("Any"))] + [
        SelectChoice(t.code, f"{t.code} {localized(t, 'name')}")
        for t in catalog.list_service_types(page_size=ALL)[0]
    ]
    form.priority.choices = choices("priority", _("Any"))
    form.validate()
    page = form.value("page") or 1
    needs, total = services.unmet_needs(principal, **form.filters(), page=page, page_size=PAGE_SIZE)
    overdue, overdue_total = services.list_referrals(principal, overdue=True, sort="offered_at",
                                                     page_size=OVERDUE_SHOWN)
    run = None
    if form.value("run"):
        try:
            run = services.get_run(principal, form.value("run"))
        except NotFound:
            run = None
    return render_template(
        "matching/queue.html",
        form=form,
        needs=needs,
        total=total,
        page=page,
        last_page=last_page(total, PAGE_SIZE),
        overdue=services.present_referrals(principal, overdue),
        overdue_total=overdue_total,
        run=run,
        run_form=_run_form(formdata=None),
        bulk_form=forms.BulkOfferForm(formdata=None),
        here=_here(),
    )


@blp.post("/matching/run")
@requires(Permission.MATCHING_RUN)
def run_matching():
    """Propose an organisation for every open need in scope at once, then show the run's summary."""
    form = _run_form()
    if not form.validate_on_submit():
        flash(_("Choose which needs to match."), "error")
        return _back(url_for("matching_pages.queue"))
    try:
        run = services.run_matching(current_principal(), town=form.town.data or None)
    except Conflict:
        flash(_("Another matching run is in progress; run again when it has finished."), "error")
        return _back(url_for("matching_pages.queue"))
    flash(
        _("Matching done: %(proposed)d of %(considered)d needs have a proposal.", proposed=run.proposed,
          considered=run.needs_considered),
        "success",
    )
    return redirect(url_for("matching_pages.queue", run=run.id), code=303)


@blp.post("/matching/offer")
@requires(Permission.MATCHING_RUN)
def offer_many():
    """Offer every ticked proposal at once; all or none (the refusal names the one that failed)."""
    form = forms.BulkOfferForm()
    if not form.validate_on_submit():
        for message in form.referral_ids.errors:
            flash(message, "error")
        return _back(url_for("matching_pages.queue"))
    try:
        offered = services.offer_many(current_principal(), form.referral_ids.data)
    except (*REFUSALS, NotFound) as exc:
        flash(_("Nothing was offered: %(detail)s", detail=exc.message), "error")
    else:
        flash(_("%(count)d proposals offered; the organisations have been asked to answer.", count=len(offered)),
              "success")
    return _back(url_for("matching_pages.queue"))


@blp.post("/matching/needs/<int:need_id>/choose")
@requires(Permission.MATCHING_RUN)
def choose(need_id: int):
    """Make an alternative the need's proposal (a manager's choice, locked against the next run)."""
    form = forms.ChooseForm()
    if not form.validate_on_submit():
        flash(_("Choose a contract line."), "error")
        return _back(url_for("matching_pages.queue"))
    try:
        referral = services.propose(current_principal(), need_id, form.line_id.data)
    except REFUSALS as exc:
        flash(refusal_message(exc), "error")
    else:
        flash(_("%(organisation)s is now the proposal for %(recipient)s (%(service)s), locked.",
                **_summary(referral)), "success")
    return _back(url_for("matching_pages.queue"))


def _lock(referral_id: int, locked: bool):
    form = forms.StepForm()
    if form.validate_on_submit():
        try:
            referral = services.set_locked(current_principal(), referral_id, locked)
        except REFUSALS as exc:
            flash(refusal_message(exc), "error")
        else:
            message = _("Locked: the next run keeps this proposal.") if referral.locked else _(
                "Unlocked: the next run may choose another organisation.")
            flash(message, "success")
    return _back(url_for("matching_pages.queue"))


@blp.post("/referrals/<int:referral_id>/lock")
@requires(Permission.MATCHING_RUN)
def lock(referral_id: int):
    """Lock a proposal so that the next matching run keeps it."""
    return _lock(referral_id, True)


@blp.post("/referrals/<int:referral_id>/unlock")
@requires(Permission.MATCHING_RUN)
def unlock(referral_id: int):
    """Unlock a proposal: the next matching run may replace it."""
    return _lock(referral_id, False)


@blp.post("/referrals/<int:referral_id>/reoffer")
@requires(Permission.MATCHING_RUN)
def reoffer(referral_id: int):
    """Withdraw an offer left unanswered past its deadline and offer the need to the next-best organisation."""
    form = forms.StepForm()
    if form.validate_on_submit():
        try:
            referral = services.reoffer(current_principal(), referral_id)
        except Conflict as exc:
            if exc.errors.get("status") == ["offered"]:  # not overdue (yet): the organisation may still answer
                flash(_("Only an offer past its answer deadline can be re-offered."), "error")
            else:
                flash(refusal_message(exc), "error")
        except REFUSALS as exc:
            flash(refusal_message(exc), "error")
        else:
            flash(_("Re-offered to %(organisation)s: %(recipient)s, %(service)s.", **_summary(referral)), "success")
    return _back(url_for("matching_pages.queue"))


# --- referrals ------------------------------------------------------------------------------


@blp.get("/referrals")
@requires(Permission.REFERRALS_READ)
def referrals():
    """A provider admin's inbox (offers to answer, referrals served); everyone else's filtered list."""
    principal = current_principal()
    if principal.can(Permission.REFERRALS_RESPOND):
        page = max(1, request.args.get("page", 1, type=int) or 1)
        offers, serving, total = services.referral_inbox(principal, page=page, page_size=PAGE_SIZE)
        return render_template(
            "matching/inbox.html", offers=offers, serving=serving, total=total, page=page,
            last_page=last_page(total, PAGE_SIZE), reason_form=forms.ReasonForm(formdata=None), here=_here(),
        )
    form = forms.ReferralFilterForm(request.args)
    form.town.choices = _town_choices(_("All towns"))
    form.organisation_id.choices = organisation_choices(
        registry.list_organisations(principal, page_size=ALL)[0], _("All organisations"))
    form.validate()
    page = form.value("page") or 1
    items, total = services.list_referrals(principal, **form.filters(), page=page, page_size=PAGE_SIZE)
    return render_template(
        "matching/referrals.html", form=form, referrals=services.present_referrals(principal, items), total=total,
        page=page, last_page=last_page(total, PAGE_SIZE), reason_form=forms.ReasonForm(formdata=None), here=_here(),
    )


def _referral_page(referral_id: int, failed: dict | None = None, status: int = 200):
    """The referral's page; `failed` ({step: form}) shows a step's form again with its errors."""
    referral, history = services.referral_with_history(current_principal(), referral_id)
    here = url_for("matching_pages.referral", referral_id=referral_id)
    if failed:  # a step's form came back: its buttons still lead where the step was taken from
        here = safe_next_url(request.form.get("next")) or here
    return render_template(
        "matching/referral.html", referral=referral, history=history, failed=failed or {},
        reason_form=forms.ReasonForm(formdata=None), here=here,
    ), status


@blp.get("/referrals/<int:referral_id>")
@requires(Permission.REFERRALS_READ)
def referral(referral_id: int):
    """One referral: the need, the recipient as the caller may see them, the match, the steps, its history."""
    return _referral_page(referral_id)


def _take_step(referral_id: int, step: str):
    """Take a lifecycle step from a page; a missing reason comes back as a field error (422)."""
    needs_reason = services.ACTIONS[step].needs_reason
    form = forms.ReasonForm() if needs_reason else forms.StepForm()
    if not form.validate_on_submit():
        return _referral_page(referral_id, {step: form}, 422)
    try:
        done = services.act(current_principal(), referral_id, step, reason=form.reason.data if needs_reason else "")
    except ValidationFailed as exc:
        if needs_reason and "reason" in exc.errors:
            attach_errors(form, {"reason": [_("Give a reason.")]})
            return _referral_page(referral_id, {step: form}, 422)
        flash(refusal_message(exc), "error")
    except REFUSALS as exc:
        flash(refusal_message(exc), "error")
    else:
        flash(_("%(done)s: %(recipient)s, %(service)s (%(organisation)s).", done=label("step_done", step),
                **_summary(done)), "success")
    return _back(url_for("matching_pages.referral", referral_id=referral_id))


def _step_view(step: str, permission: Permission):
    def view(referral_id: int):
        return _take_step(referral_id, step)

    view.__name__ = f"referral_{step}"
    view.__doc__ = f"Take the {step!r} step on a referral from a page."
    blp.post(f"/referrals/<int:referral_id>/{step}", endpoint=f"referral_{step}")(requires(permission)(view))


for _step, _permission in STEP_PERMISSIONS.items():
    _step_view(_step, _permission)
