"""Report pages (效能评估): an auditor's KPI report of any period (grouped, filtered, charted, downloadable,
each group drilling down to the records behind it), the KPI definitions, frozen monthly reports with what
changed since they were issued (and, for managers, a form to freeze a contract's month), each contract's monthly
settlement (what is owed for the verified visits, frozen or live), a manager's dashboard of this month and of each
contract's budget burn, and a provider's scorecard (both with the month's exceptions by code).

Each view parses a form, calls the evaluation services with the caller's Principal (they scope what a
provider or a town manager sees) and renders. A service's refusal of the input (ValidationFailed) comes
back as the form with the field marked; a request for what the caller may not see is the 403 or 404 page.
The helpers below only lay out what the services return: numbers in words, group names, links, charts.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from markupsafe import Markup
from wtforms.fields import SelectChoice

from servicehub.auth import policy
from servicehub.auth.access import current_principal, requires, safe_next_url
from servicehub.auth.permissions import Permission
from servicehub.catalog import services as catalog
from servicehub.errors import Conflict, NotFound, ValidationFailed
from servicehub.evaluation import charts, forms, kpis, services
from servicehub.i18n import current_language, localized
from servicehub.registry import services as registry
from servicehub.registry.forms import organisation_choices
from servicehub.timeutil import district_today
from servicehub.visits.exceptions import NAMES as EXCEPTION_NAMES
from servicehub.visits.exceptions import Code
from servicehub.web.format import label, last_page, local_time, units, yuan
from servicehub.web.forms import attach_service_errors, known_message

blp = Blueprint("evaluation_pages", __name__, template_folder="templates")

ALL = 10_000  # "every row" for the short lists behind select boxes
RECORDS_PAGE_SIZE = 200  # records of a drill-down listed per page (the sums are over all of them)
CHART_GROUPS = 40  # groups drawn in a report's bar charts (the table lists them all)
# The figures a report's table shows, in order (every figure is in the downloads).
TABLE_FIGURES = ("person_times", "recipients", "service_hours", "contract_completion", "coverage",
                 "satisfaction_mean", "on_time_rate", "missed_rate", "delivered_value_fen", "budget_execution")
# The figures a drill-down's records add up to, in the order its sums are shown.
SUMMED = ("person_times", "missed", "service_hours", "delivered_units", "delivered_value_fen")
MONTH_FIGURES = ("person_times", "recipients", "coverage", "missed", "delivered_value_fen", "budget_execution")
# The service's field names -> the report form's fields.
FORM_FIELDS = {"from": "first", "to": "last", "group_by": "group_by"}
# The services' field messages in the page's language (others are shown as the service wrote them).
SERVICE_MESSAGES = {
    "Must be on or after 'from'.": _l("The last day must be on or after the first day."),
    "At most five years after 'from'.": _l("A report spans at most five years."),
    "Not over yet.": _l("Only a month that is over can be frozen."),
    "Outside the contract.": _l("The contract does not run in that month."),
    "Already frozen.": _l("This month of the contract is already frozen."),
    "Not a month (YYYY-MM).": _l("Write the month as YYYY-MM."),
    "Unknown.": _l("No such contract."),
}
NONE_LABELS = {"contract": _l("No contract in force"), "worker": _l("No worker")}


# --- how values are shown ---------------------------------------------------------------------


def rate(share: float | None) -> str:
    """A share in [0, 1] as a percentage with one decimal: '96.4%' ('—' when there is none)."""
    return "—" if share is None else f"{share * 100:.1f}%"


def money(fen: float | None) -> str:
    """Fen as yuan with two decimals: '¥1,234.56' ('—' when there is none)."""
    return yuan(None if fen is None else round(fen))


def figure(code: str, value) -> str:
    """A figure of a report as its definition's unit says: a count, hours, a rate, a mean, yuan …"""
    if value is None:
        return "—"
    unit = kpis.DEFINITION_BY_CODE[code].unit if code in kpis.DEFINITION_BY_CODE else "units"
    if unit == "rate":
        return rate(value)
    if unit == "fen":
        return money(value)
    if unit == "mean":
        return f"{value:.2f}"
    if unit == "count":
        return f"{value:,}"
    if unit == "hours":
        return f"{value:,.2f}"
    return units(value)


def definition(code: str) -> kpis.Definition:
    """The definition of a figure (name and text in both languages)."""
    return kpis.DEFINITION_BY_CODE[code]


def moment(text: str | None) -> datetime | None:
    """An ISO timestamp of a record, for local_time."""
    return datetime.fromisoformat(text) if text else None


def key_label(labels: dict, name: str, value) -> str:
    """One part of a group's key in words: the organisation's name, the service, the period label …"""
    if value is None:
        return str(NONE_LABELS.get(name, "—"))
    if name in kpis.PERIODS:
        return str(value)
    names = labels.get(name, {}).get(str(value))
    if not names:
        return str(value)
    return names.get(current_language()) or names.get("zh") or str(value)


def key_name(name: str) -> str:
    """What a part of a group's key is, in words: 'Organisation', 'Month' …"""
    return label("report_period", name) if name in kpis.PERIODS else label("report_dimension", name)


def group_label(labels: dict, key: dict) -> str:
    """A group's whole key in words ('乐龄居家 · 2026-11')."""
    return " · ".join(key_label(labels, name, value) for name, value in key.items()) or _("Total")


def service_message(message: str) -> str:
    """A service's field message in the page's language where it is known."""
    return known_message(message, SERVICE_MESSAGES)


def refuse_onto(form, exc, fields: dict | None = None) -> None:
    """Put a service's field errors next to the form's fields (translated where known)."""
    fields = fields or {}
    attach_service_errors(form, exc, service_message, lambda name: fields.get(name, name))
    if not exc.errors:
        form.other_errors.setdefault("", []).append(exc.message)


def exception_name(code: str) -> str:
    """An exception code in words, in the page's language ('服务时长过短')."""
    try:
        zh, en = EXCEPTION_NAMES[Code(code)]
    except ValueError:
        return code
    return en if current_language() == "en" else zh


def has_page(endpoint: str) -> bool:
    """Whether the app has this page (the exception queue's pages belong to the visits package)."""
    return endpoint in current_app.view_functions


def exception_queue_url(principal, **filters) -> str | None:
    """The exception queue filtered (month, code, organisation for the bureau), if the app has it."""
    if not has_page("visits_pages.exceptions") or not principal.can(Permission.EXCEPTIONS_READ):
        return None
    if principal.is_provider:
        filters.pop("organisation_id", None)
    return url_for("visits_pages.exceptions", **{k: v for k, v in filters.items() if v is not None})


@blp.context_processor
def _evaluation_helpers():
    return {"figure": figure, "rate": rate, "money": money, "definition": definition, "moment": moment,
            "local_time": local_time, "key_name": key_name, "table_figures": TABLE_FIGURES,
            "formats": forms.FORMATS, "format_names": forms.FORMAT_NAMES, "exception_name": exception_name,
            "exception_queue_url": exception_queue_url}


# --- the report's parts -------------------------------------------------------------------------


def quick_periods(today: date) -> list[tuple[str, str, date, date]]:
    """The quick picks of the period form: (key, words, first, last)."""
    this_month = today.replace(day=1)
    return [
        ("last_month", _("Last month"), kpis.add_months(this_month, -1), this_month - timedelta(days=1)),
        ("this_month", _("This month"), this_month, today),
        ("this_year", _("This year"), date(today.year, 1, 1), today),
    ]


def _link_args(report: dict) -> dict:
    """The report's period and filters as query arguments."""
    args = {"from": report["from"], "to": report["to"]}
    args.update({name: value for name, value in (report.get("filters") or {}).items() if value is not None})
    return args


def records_url(report: dict, key: dict, back: str | None = None) -> str:
    """The drill-down page of a group, coming back to `back` (a group of visits with no contract or no worker
    says so with `unassigned`)."""
    args = _link_args(report)
    for name, value in key.items():
        if value is None:
            args.setdefault("unassigned", []).append(name)
        elif name in kpis.PERIODS:
            args["granularity"], args["bucket"] = name, value
        else:
            args[services.FILTER_OF[name]] = value
    return url_for("evaluation_pages.records", **args, back=back)


def export_urls(report: dict) -> dict[str, str]:
    """The report's downloads (the API's export with the same period, grouping and filters), by format."""
    args = _link_args(report)
    if report["group_by"]:
        args["group_by"] = ",".join(report["group_by"])
    return {fmt: url_for("evaluation.KpiExport", format=fmt, **args) for fmt in forms.FORMATS}


def table(report: dict, back: str | None = None) -> dict:
    """A report laid out for its table: the grouping's names, one row per group (its key in words and, when
    the page it is on is given, the link to its records) and the total."""
    labels = report.get("labels") or {}
    rows = [{"key": group["key"], "cells": [key_label(labels, name, value) for name, value in group["key"].items()],
             "label": group_label(labels, group["key"]), "figures": group["figures"],
             "url": records_url(report, group["key"], back) if back else None}
            for group in report["groups"]]
    return {"names": list(report["group_by"]), "rows": rows, "total": report["total"]}


def report_charts(report: dict, rows: list[dict]) -> list[Markup]:
    """Person-times and delivered value per group (the total when ungrouped) and the satisfaction
    distribution, as SVG."""
    shown = rows[:CHART_GROUPS] or [{"label": _("Total"), "figures": report["total"]}]
    by = " · ".join(key_name(n) for n in report["group_by"]) or _("Total")
    person_times = [(row["label"], row["figures"]["person_times"]) for row in shown]
    value = [(row["label"], (row["figures"]["delivered_value_fen"] or 0) / 100) for row in shown]
    return [
        Markup(charts.bar_chart(_("%(figure)s by %(group)s", figure=localized(definition("person_times"), "name"),
                                  group=by), person_times)),
        Markup(charts.bar_chart(_("%(figure)s by %(group)s (yuan)",
                                  figure=localized(definition("delivered_value_fen"), "name"), group=by),
                                value, "¥{:,.2f}")),
        Markup(charts.distribution_chart(_("Satisfaction: person-times at each score"),
                                         report["total"]["satisfaction_distribution"])),
    ]


def _choices(items, blank: str, value, text) -> list[SelectChoice]:
    return [SelectChoice("", blank)] + [SelectChoice(str(value(item)), text(item)) for item in items]


def _contract_name(contract) -> str:
    return f"{contract.code} {localized(contract, 'name')}"


def _report_choices(form: forms.ReportForm, principal) -> None:
    """The filters' choices from the registry, as far as the caller may see it."""
    form.organisation_id.choices = organisation_choices(
        registry.list_organisations(principal, page_size=ALL)[0], _("All organisations"))
    form.contract_id.choices = _choices(registry.list_contracts(principal, page_size=ALL)[0], _("All contracts"),
                                        lambda c: c.id, _contract_name)
    form.service_type.choices = _choices(catalog.list_service_types(page_size=ALL)[0], _("All services"),
                                         lambda t: t.code, lambda t: f"{t.code} {localized(t, 'name')}")
    towns = [t for t in registry.list_towns() if principal.town_id in (None, t.id)]
    form.town_id.choices = _choices(towns, _("All towns"), lambda t: t.id, lambda t: localized(t, "name"))
    form.recipient_class.choices = _choices(catalog.list_assistance_classes(), _("All classes"), lambda c: c.code,
                                            lambda c: localized(c, "name"))


# --- the report -------------------------------------------------------------------------------


@blp.get("/reports")
@requires(Permission.REPORTS_READ)
def report():
    """A KPI report of any period: groups × figures with the total, charts, downloads and a drill-down
    link on every group (this month by organisation when nothing is asked)."""
    principal = current_principal()
    today = district_today()
    if not request.args:
        first = today.replace(day=1)
        return redirect(url_for("evaluation_pages.report", **{"from": first.isoformat(), "to": today.isoformat(),
                                                              "group_by": "organisation"}))
    form = forms.ReportForm(request.args)
    _report_choices(form, principal)
    result, status = None, 200
    if form.validate():
        try:
            result = services.kpi_report(principal, **form.query())
        except ValidationFailed as exc:
            refuse_onto(form, exc, FORM_FIELDS)
            status = 422
    else:
        status = 422
    laid_out = table(result, back=request.full_path) if result else None
    here = request.args.to_dict()
    quick = [(key, words, url_for("evaluation_pages.report", **{**here, "from": a.isoformat(), "to": b.isoformat()}))
             for key, words, a, b in quick_periods(today)]
    return render_template(
        "evaluation/report.html",
        form=form,
        report=result,
        table=laid_out,
        charts=report_charts(result, laid_out["rows"]) if result else [],
        chart_groups=CHART_GROUPS,
        download_urls=export_urls(result) if result else {},
        quick=quick,
        definitions=kpis.DEFINITIONS,
    ), status


# --- the records behind a group -----------------------------------------------------------------


def describe_group(drilled: dict, labels: dict) -> list[tuple[str, str]]:
    """What the records were selected by, in words: [(what, which)]."""
    parts = []
    for dimension, name in services.FILTER_OF.items():
        value = drilled["filters"].get(name)
        if value is not None:
            parts.append((label("report_dimension", dimension), key_label(labels, dimension, value)))
    for name, value in drilled["key"].items():
        if name in kpis.PERIODS:
            parts.append((label("report_period", name), str(value)))
    return parts


@blp.get("/reports/records")
@requires(Permission.REPORTS_READ)
def records():
    """The visits behind a group of a report, each with what it adds, and their sums (which are the group's
    figures); paginated, the sums over all of them."""
    principal = current_principal()
    form = forms.RecordsForm(request.args)
    page = max(1, request.args.get("page", 1, type=int) or 1)
    drilled, problems, status = None, [], 200
    if form.validate():
        try:
            drilled = services.drill_down(principal, form.first.data, form.last.data, key=form.key(),
                                          **form.filters())
        except ValidationFailed as exc:
            problems = [service_message(m) for messages in exc.errors.values() for m in messages] or [exc.message]
            status = 422
    else:
        problems = [f"{form[name].label.text or name}: {message}" for name, messages in form.errors.items()
                    for message in messages]
        status = 422
    shown, labels, parts, total = [], {}, [], 0
    if drilled is not None:
        total = len(drilled["records"])
        shown = drilled["records"][(page - 1) * RECORDS_PAGE_SIZE:page * RECORDS_PAGE_SIZE]
        labels = drilled["labels"]
        parts = describe_group(drilled, labels)
    return render_template(
        "evaluation/records.html",
        drilled=drilled,
        records=shown,
        total=total,
        page=page,
        last_page=last_page(total, RECORDS_PAGE_SIZE),
        labels=labels,
        parts=parts,
        problems=problems,
        summed=SUMMED,
        name_of=lambda dimension, value: key_label(labels, dimension, value),
        back_url=safe_next_url(request.args.get("back")),
    ), status


@blp.get("/reports/definitions")
@requires(Permission.REPORTS_READ)
def definitions():
    """What every figure means, word for word as the reports print it, in the page's language."""
    return render_template("evaluation/definitions.html", definitions=kpis.DEFINITIONS)


# --- frozen reports ------------------------------------------------------------------------------


def _freeze_form(principal, **kwargs) -> forms.FreezeForm:
    form = forms.FreezeForm(**kwargs)
    form.contract_id.choices = _choices(registry.list_contracts(principal, page_size=ALL)[0], _("Choose a contract"),
                                        lambda c: c.id, _contract_name)
    return form


def open_exceptions_refusal(count: int | None) -> str:
    """The refusal `open_exceptions` in the page's language (the service's code, not its English words)."""
    if count is None:
        return _("Exceptions of this month are not decided yet: decide them in the exception queue first, or tick "
                 "the box to freeze the month with them open (they are listed in its settlement).")
    return _("%(count)d exceptions of this month are not decided yet: decide them in the exception queue first, or "
             "tick the box to freeze the month with them open (they are listed in its settlement).", count=count)


def _frozen_list(freeze_form: forms.FreezeForm | None = None, status: int = 200):
    principal = current_principal()
    contracts = registry.list_contracts(principal, page_size=ALL)[0]
    filters = forms.FrozenFilterForm(request.args)
    filters.contract_id.choices = _choices(contracts, _("All contracts"), lambda c: c.id, _contract_name)
    filters.validate()
    contract_id = None if filters.contract_id.errors else filters.contract_id.data
    # A town manager holds the permission but reaches no frozen report (a contract's month spans every town).
    can_freeze = principal.can(Permission.REPORTS_FREEZE) and policy.scope_of(
        principal, policy.Resource.FROZEN_REPORTS, policy.Action.WRITE) != policy.Scope.NONE
    reaches_frozen = policy.scope_of(principal, policy.Resource.FROZEN_REPORTS) != policy.Scope.NONE
    if can_freeze and freeze_form is None:
        freeze_form = _freeze_form(principal, formdata=None, month=services.previous_month(district_today()))
    return render_template(
        "evaluation/frozen_list.html",
        frozen=services.list_frozen(principal, contract_id=contract_id),
        filters=filters,
        freeze_form=freeze_form if can_freeze else None,
        reaches_frozen=reaches_frozen,
    ), status


@blp.get("/reports/frozen")
@requires(Permission.REPORTS_READ)
def frozen_list():
    """The frozen monthly reports the caller may see, newest month first, with their downloads."""
    return _frozen_list()


@blp.post("/reports/frozen")
@requires(Permission.REPORTS_FREEZE)
def freeze():
    """Freeze a contract's month that is over; then show the frozen report."""
    principal = current_principal()
    form = _freeze_form(principal)
    if not form.validate_on_submit():
        return _frozen_list(form, 422)
    try:
        frozen = services.freeze_contract_month(principal, form.contract_id.data, form.month.data,
                                                accept_open_exceptions=form.accept_open_exceptions.data)
    except Conflict as exc:
        if exc.code != "open_exceptions":
            refuse_onto(form, exc)
            return _frozen_list(form, exc.status)
        # The rule by its code: the count from the service's message, the words the page's own.
        form.undecided = getattr(exc.message, "values", {}).get("count")
        form.other_errors["accept_open_exceptions"] = [open_exceptions_refusal(form.undecided)]
        return _frozen_list(form, exc.status)
    except (ValidationFailed, NotFound) as exc:
        refuse_onto(form, exc)
        return _frozen_list(form, exc.status)
    if frozen.open_exceptions:
        flash(_("Frozen: %(month)s of %(contract)s, %(records)d records; %(count)d exceptions still undecided are "
                "listed in its settlement.", month=form.month.data, contract=_contract_name(frozen.contract),
                records=frozen.record_count, count=frozen.open_exceptions), "success")
    else:
        flash(_("Frozen: %(month)s of %(contract)s, %(records)d records.", month=form.month.data,
                contract=_contract_name(frozen.contract), records=frozen.record_count), "success")
    back = safe_next_url(form.back.data)
    return redirect(back or url_for("evaluation_pages.frozen", frozen_id=frozen.id), code=303)


def figure_changes(changes: list[dict], labels: dict) -> list[dict]:
    """A comparison's changed figures with their group and figure in words."""
    shown = []
    for change in changes:
        group = _("Total") if change["group"] == "total" else group_label(labels, json.loads(change["group"]))
        shown.append({**change, "group_label": group, "name": localized(definition(change["figure"]), "name"),
                      "frozen_text": figure(change["figure"], change["frozen"]),
                      "now_text": figure(change["figure"], change["now"])})
    return shown


@blp.get("/reports/frozen/<int:frozen_id>")
@requires(Permission.REPORTS_READ)
def frozen(frozen_id: int):
    """A frozen report's stored figures, and what today's data says of the same period: unchanged, or the
    records and figures that differ (frozen value against today's)."""
    principal = current_principal()
    comparison = services.compare_frozen(principal, frozen_id)
    found = services.get_frozen(principal, frozen_id)
    stored = found.figures["report"]
    labels = stored.get("labels") or {}
    month = found.period_start.strftime("%Y-%m")
    return render_template(
        "evaluation/frozen.html",
        frozen=found,
        table=table(stored),
        comparison=comparison,
        changes=figure_changes(comparison["figures"], labels),
        settlement_changes=settlement_changes(comparison["settlement"], found.settlement),
        settlement_url=url_for("evaluation_pages.settlement", contract_id=found.contract_id, month=month),
        download_urls={fmt: url_for("evaluation.FrozenExport", frozen_id=frozen_id, format=fmt)
                       for fmt in forms.FORMATS},
    )


# --- a manager's dashboard and a provider's scorecard ---------------------------------------------


@blp.get("/reports/dashboard")
@requires(Permission.REPORTS_READ)
def dashboard():
    """This month so far (person-times, coverage, missed visits, value), each contract's budget burn and the
    organisations' latest scores."""
    principal = current_principal()
    today = district_today()
    first = today.replace(day=1)
    month = services.kpi_report(principal, first, today)
    organisations = {o.id: o for o in registry.list_organisations(principal, page_size=ALL)[0]}
    scores = sorted(services.scores_visible(principal), key=lambda s: (s.score is None, -(s.score or 0)))
    return render_template(
        "evaluation/dashboard.html",
        first=first,
        today=today,
        totals=month["total"],
        month_figures=MONTH_FIGURES,
        month_url=url_for("evaluation_pages.report", **{"from": first.isoformat(), "to": today.isoformat(),
                                                        "group_by": "organisation"}),
        burn=services.budget_burn(principal, today),
        scores=scores,
        organisations=organisations,
        exceptions_by_code=services.exception_counts(principal, first, today),
        month=first.strftime("%Y-%m"),
    )


def month_figures(report: dict, months: list[date]) -> list[dict]:
    """The figures of each month of a report grouped by month (None where the month has none)."""
    by_label = {group["key"]["month"]: group["figures"] for group in report["groups"]}
    return [by_label.get(kpis.bucket_of(month, "month").label) for month in months]


@blp.get("/reports/scorecard")
@requires(Permission.REPORTS_READ)
def scorecard():
    """An organisation's figures last month and this month so far, its score with its components, and its
    frozen reports (a provider: its own; others choose the organisation)."""
    principal = current_principal()
    form = forms.ScorecardForm(request.args)
    if principal.is_provider:
        organisation_id = principal.organisation_id
    else:
        form.organisation_id.choices = organisation_choices(
            registry.list_organisations(principal, page_size=ALL)[0], _("Choose an organisation"))
        form.validate()
        organisation_id = None if form.organisation_id.errors else form.organisation_id.data
    if organisation_id is None:
        return render_template("evaluation/scorecard.html", form=form, organisation=None)
    organisation = registry.get_organisation(principal, organisation_id)
    today = district_today()
    this_month = today.replace(day=1)
    months = [kpis.add_months(this_month, -1), this_month]
    report = services.kpi_report(principal, months[0], today, ("month",), organisation_id=organisation_id)
    score = next((s for s in services.scores_visible(principal) if s.organisation_id == organisation_id), None)
    report_args = {"from": months[0].isoformat(), "to": today.isoformat(), "group_by": "", "period": "month"}
    if not principal.is_provider:
        report_args["organisation_id"] = organisation_id
    return render_template(
        "evaluation/scorecard.html",
        form=form,
        organisation=organisation,
        months=[(m, kpis.bucket_of(m, "month").label) for m in months],
        figures=month_figures(report, months),
        today=today,
        score=score,
        definitions=kpis.DEFINITIONS,
        frozen=services.list_frozen(principal, organisation_id=organisation_id),
        report_url=url_for("evaluation_pages.report", **report_args),
        exceptions_by_code=services.exception_counts(principal, months[0], today, organisation_id=organisation_id),
        exceptions_from=months[0],
    )


# --- monthly settlements ----------------------------------------------------------------------------


def settlement_changes(changes: list[dict], frozen: dict | None) -> list[dict]:
    """A comparison's settlement differences in words: which line (or visit, or the total), which figure, as frozen
    and now."""
    lines = {line["line_id"]: line for line in (frozen or {}).get("lines", [])}
    shown = []
    for change in changes:
        money_figure = change["figure"] in ("amount_fen", "unverified_fen", "total_fen")
        if change.get("visit_id") is not None:
            what, name = _("Visit %(id)s", id=change["visit_id"]), _("Paid")
            values = [_("yes") if v else _("no") for v in (change["frozen"], change["now"])]
        else:
            line = lines.get(change.get("line_id"))
            what = change.get("service_type") or (line or {}).get("service_type") or _("Total")
            name = label("settlement_figure", change["figure"])
            values = [money(v) if money_figure else ("—" if v is None else units(v)) for v in (change["frozen"],
                                                                                             change["now"])]
        shown.append({**change, "what": what, "name": name, "frozen_text": values[0], "now_text": values[1]})
    return shown


def _unsettled_rows(principal, found: dict) -> list[dict]:
    """The visits not paid yet with their names, their exceptions in words and where to deal with each."""
    document = found["settlement"]
    names, ids = found["names"], found["exception_ids"]
    codes = {line["line_id"]: line["service_type"] for line in document["lines"]}
    can_queue = has_page("visits_pages.exception") and principal.can(Permission.EXCEPTIONS_READ)
    rows = []
    for row in document["unsettled"]:
        exceptions = []
        for exception in row["exceptions"]:
            exception_id = ids.get(row["visit_id"], {}).get(exception["code"])
            exceptions.append({**exception, "name": exception_name(exception["code"]),
                               "status_name": label("settlement_exception_status", exception["status"]),
                               "url": url_for("visits_pages.exception", exception_id=exception_id)
                               if can_queue and exception_id else None})
        day = row["service_date"]
        rows.append({**row, "service_type": codes.get(row["line_id"], ""),
                     "recipient_name": names["recipients"].get(row["recipient"], ""),
                     "worker_name": names["workers"].get(row["worker"], "") if row["worker"] else "",
                     "exceptions": exceptions,
                     "records_url": url_for("evaluation_pages.records", **{"from": day, "to": day},
                                            contract_id=found["contract_id"], worker_id=row["worker"]),
                     "any_link": can_queue})
    return rows


def _settlement_page(form: forms.SettlementForm, found: dict | None, status: int = 200):
    principal = current_principal()
    extra = {}
    if found is not None:
        month = found["month"]
        over = services.month_of(month)[1] < district_today()
        # A month over and not frozen yet (a month frozen before settlements existed has none to show, and stays).
        can_freeze = principal.can(Permission.REPORTS_FREEZE) and found["frozen_id"] is None and over
        freeze_form = None
        if can_freeze:
            freeze_form = _freeze_form(principal, formdata=None, contract_id=found["contract_id"], month=month,
                                       back=request.full_path)
            freeze_form.undecided = found["undecided"]
        organisation = None if principal.is_provider else found["organisation_id"]
        extra = {
            "unsettled": _unsettled_rows(principal, found),
            "changes": settlement_changes(found["differences"], found["settlement"]) if found["frozen"] else [],
            "queue_url": exception_queue_url(principal, month=month, organisation_id=organisation),
            "download_urls": {fmt: url_for("evaluation.SettlementExport", contract_id=found["contract_id"],
                                           month=month, format=fmt) for fmt in forms.FORMATS},
            "frozen_url": url_for("evaluation_pages.frozen", frozen_id=found["frozen_id"])
            if found["frozen_id"] else None,
            "freeze_form": freeze_form,
            "service_names": {code: names.get(current_language()) or names.get("zh") or code
                              for code, names in found["names"]["service_types"].items()},
        }
    return render_template("evaluation/settlement.html", form=form, found=found, **extra), status


@blp.get("/reports/settlement")
@requires(Permission.REPORTS_READ)
def settlement():
    """A contract's monthly settlement: each line's billing terms, its delivered, verified and unverified visits,
    billable units and amount, the total and its split by funding source, the visits not paid yet with their
    exceptions, frozen or live, and what changed since it was frozen; downloads, and for managers the month's
    freezing (last month of the caller's only contract when nothing is asked)."""
    principal = current_principal()
    contracts = registry.list_contracts(principal, page_size=ALL)[0]
    if not request.args:
        args = {"month": services.previous_month(district_today())}
        if len(contracts) == 1:
            args["contract_id"] = contracts[0].id
        return redirect(url_for("evaluation_pages.settlement", **args))
    form = forms.SettlementForm(request.args)
    form.contract_id.choices = _choices(contracts, _("Choose a contract"), lambda c: c.id, _contract_name)
    if not form.validate():
        return _settlement_page(form, None, 422)
    if form.contract_id.data is None:
        return _settlement_page(form, None)
    try:
        found = services.contract_settlement(principal, form.contract_id.data, form.month.data)
    except (ValidationFailed, NotFound) as exc:
        refuse_onto(form, exc)
        return _settlement_page(form, None, exc.status)
    return _settlement_page(form, found)
