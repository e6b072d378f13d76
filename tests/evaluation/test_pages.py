"""Report pages through the test client, over a real ledger of two organisations: an auditor's report
(groups × figures with the total, charts, downloads, definitions in both languages), drill-downs whose
sums are the group's figures, bad input shown on the form, what a provider may see, frozen reports and
their comparison with today's data, the manager's dashboard and a provider's scorecard; caregivers get none."""

from __future__ import annotations

import re
from html import unescape

import pytest

from servicehub.auth.permissions import COMMAND_LINE
from servicehub.evaluation import kpis, services
from servicehub.evaluation.views import figure
from servicehub.registry import services as registry
from servicehub.scheduling import services as scheduling
from tests.evaluation.test_reports_api import late_correction
from tests.matching.test_pages import flashes, messages, post
from tests.registry import factories as make
from tests.registry.test_pages import field_errors, signed_in
from tests.scheduling.fixtures import EVERY_DAY, accept_all, district_today

OTHER_SERVICE = "PS01"  # the second organisation's only contracted service: matching gives it every PS01 need


@pytest.fixture
def other_organisation(app, served):
    """A second organisation serving three recipients twice a week (companionship), visits generated."""
    with app.app_context():
        other = make.organisation_ids()[1]
        make.worker(other, name="周陪伴", availability=EVERY_DAY)
        make.contract(other, lines=[{"service_type": OTHER_SERVICE, "unit_price_fen": 4000,
                                     "contracted_quantity": 300}])
        people = [make.recipient(name=f"陪伴对象{k}") for k in range(3)]
        accept_all(other, [make.need(p.id, service_type=OTHER_SERVICE, quantity=2).id for p in people])
        scheduling.generate_visits(COMMAND_LINE)
        return other


@pytest.fixture
def reported(app, other_organisation, history):
    """Both organisations' last five weeks in the ledger (the second organisation's visit series exist before
    `history` writes the past, so it has a past too)."""
    return {**history, "other": other_organisation}


def period(data) -> dict:
    return {"from": data["first"].isoformat(), "to": data["last"].isoformat()}


def page(client, url, status=200, **params) -> str:
    response = client.get(url, query_string=params or None)
    assert response.status_code == status, (url, params, response.status_code)
    return unescape(response.get_data(as_text=True))


def report_of(app, **params) -> dict:
    """The same report from the service (as the command line)."""
    with app.app_context():
        return services.kpi_report(COMMAND_LINE, **params)


def table_rows(html: str) -> list[dict]:
    """The report table's group rows: their link to the records and their figures as shown."""
    body = re.search(r'data-testid="report-table".*?<tbody>(.*?)</tbody>', html, re.S).group(1)
    rows = []
    for row in re.findall(r"<tr data-group=.*?</tr>", body, re.S):
        link = re.search(r'<a href="([^"]+)" data-testid="drill-down">([^<]*)</a>', row)
        rows.append({"url": link.group(1) if link else None, "name": link.group(2) if link else None,
                     "figures": dict(re.findall(r'data-figure="(\w+)">([^<]*)<', row))})
    return rows


def total_row(html: str) -> dict[str, str]:
    row = re.search(r'<tr data-testid="total">.*?</tr>', html, re.S).group(0)
    return dict(re.findall(r'data-figure="(\w+)">([^<]*)<', row))


def sums(html: str) -> dict[str, str]:
    box = re.search(r'data-testid="sums".*?</dl>', html, re.S).group(0)
    return dict(re.findall(r'data-sum="(\w+)">([^<]*)<', box))


def organisation_name(app, organisation_id: int, short: bool = False) -> str:
    with app.app_context():
        found = registry.get_organisation(COMMAND_LINE, organisation_id)
        return found.short_name if short else found.name_zh


# --- the report ---------------------------------------------------------------------------------


def test_an_auditor_reads_a_report_with_its_total_charts_downloads_and_definitions(app, reported):
    client = signed_in(app, "auditor")
    first = client.get("/reports")
    today = district_today()
    assert first.status_code == 302
    assert first.headers["Location"] == (f"/reports?from={today.replace(day=1).isoformat()}&to={today.isoformat()}"
                                         "&group_by=organisation")

    html = page(client, "/reports", **period(reported), group_by="organisation")
    expected = report_of(app, first=reported["first"], last=reported["last"], group_by=("organisation",))
    rows = table_rows(html)
    assert [r["name"] for r in rows] == [organisation_name(app, g["key"]["organisation"]) for g in expected["groups"]]
    assert len(rows) == 2
    for row, group in zip(rows, expected["groups"], strict=True):
        for code in ("person_times", "recipients", "service_hours", "coverage", "satisfaction_mean", "on_time_rate",
                     "missed_rate", "delivered_value_fen", "budget_execution", "contract_completion"):
            assert row["figures"][code] == figure(code, group["figures"][code]), code
    total = total_row(html)
    assert total["person_times"] == str(expected["total"]["person_times"]) and expected["total"]["person_times"] > 50
    assert re.fullmatch(r"¥[\d,]+\.\d{2}", total["delivered_value_fen"])
    assert re.fullmatch(r"\d+\.\d%", total["on_time_rate"])
    assert 'data-figure="person_times"><abbr title="已核验完成的服务次数' in html  # the definition as the tooltip

    charts = re.search(r'data-testid="charts">(.*?)</section>', html, re.S).group(1)
    assert charts.count("<svg") == 3 and "服务人次" in charts and "乐龄" in charts

    links = dict(re.findall(r'href="([^"]+)" data-format="(\w+)"', html))
    by_format = {fmt: url for url, fmt in links.items()}
    assert set(by_format) == {"csv", "xlsx", "pdf"}
    for fmt, url in by_format.items():
        assert url.startswith(f"/api/v1/reports/kpis/export?format={fmt}&")
        assert f"from={reported['first'].isoformat()}" in url and "group_by=organisation" in url
    csv = client.get(by_format["csv"])
    assert csv.status_code == 200 and csv.mimetype == "text/csv"
    text = csv.get_data().decode("utf-8-sig")
    assert "服务人次 (person_times)" in text and text.count("\n") == 4  # header, two groups, total

    definitions = re.search(r'data-testid="definitions".*?</details>', html, re.S).group(0)
    for d in kpis.DEFINITIONS:
        assert f">{d.name_zh}</dt>" in definitions and f">{d.text_zh}</dd>" in definitions
    client.get("/lang/en")
    english = page(client, "/reports/definitions")
    for d in kpis.DEFINITIONS:
        assert f">{d.name_en}</dt>" in english and f">{d.text_en}</dd>" in english


def test_every_group_drills_down_to_records_that_add_up_to_its_figures(app, reported):
    client = signed_in(app, "auditor")
    html = page(client, "/reports", **period(reported), group_by="organisation", period="week")
    expected = report_of(app, first=reported["first"], last=reported["last"], group_by=("organisation", "week"))
    rows = table_rows(html)
    assert len(rows) == len(expected["groups"]) >= 6
    for row, group in zip(rows, expected["groups"], strict=True):
        key = group["key"]
        assert row["url"].startswith(f"/reports/records?from={reported['first'].isoformat()}"
                                     f"&to={reported['last'].isoformat()}&organisation_id={key['organisation']}"
                                     f"&granularity=week&bucket={key['week']}&back=/reports?")
        records = page(client, row["url"])
        assert 'data-testid="back-to-report"' in records and "period=week" in records.split("back-to-report")[0]
        shown = sums(records)
        for code in ("person_times", "missed", "service_hours", "delivered_units", "delivered_value_fen"):
            assert shown[code] == figure(code, group["figures"][code]), (key, code)
        assert shown["person_times"] == row["figures"]["person_times"]
        assert shown["delivered_value_fen"] == row["figures"]["delivered_value_fen"]
        listed = re.findall(r'<tr data-visit="\d+" data-outcome="(\w+)"', records)
        assert listed.count("delivered") == group["figures"]["person_times"]
        assert listed.count("missed") == group["figures"]["missed"]
        assert organisation_name(app, key["organisation"]) in records and key["week"] in records


def test_bad_input_shows_the_form_again_with_the_field_marked(app, reported):
    client = signed_in(app, "auditor")
    backwards = page(client, "/reports", 422, **{"from": "2026-11-05", "to": "2026-11-01"})
    assert field_errors(backwards, "to") == ["结束日期不能早于开始日期。"]
    assert 'aria-invalid="true" id="to" name="to"' in backwards
    assert 'data-testid="report"' not in backwards
    too_long = page(client, "/reports", 422, **{"from": "2020-01-01", "to": "2026-01-01"})
    assert field_errors(too_long, "to") == ["报表期间最长五年。"]
    malformed = page(client, "/reports", 422, **{"from": "2026-13-01", "to": "2026-11-30"})
    assert field_errors(malformed, "from") and not field_errors(malformed, "to")
    missing = page(client, "/reports", 422, **{"from": "2026-11-01"})
    assert field_errors(missing, "to") == ["请填写结束日期。"]
    nonsense = page(client, "/reports", 422, **period(reported), group_by="colour", contract_id="x")
    assert field_errors(nonsense, "group_by") and field_errors(nonsense, "contract_id")
    drill = page(client, "/reports/records", 422, **{"from": "2026-11-05", "to": "2026-11-01"})
    assert "结束日期不能早于开始日期。" in drill and 'data-testid="records"' not in drill


# --- who sees what -------------------------------------------------------------------------------


def test_a_provider_sees_its_own_organisation_only(app, reported):
    other_name = organisation_name(app, reported["other"])
    client = signed_in(app, "provider")
    html = page(client, "/reports", **period(reported), group_by="organisation")
    assert [r["name"] for r in table_rows(html)] == [organisation_name(app, reported["org"])]
    assert other_name not in html and 'name="organisation_id"' not in html  # no choice of organisation
    own = report_of(app, first=reported["first"], last=reported["last"], organisation_id=reported["org"])
    assert total_row(html)["person_times"] == str(own["total"]["person_times"])

    refused = page(client, "/reports", 422, **period(reported), organisation_id=reported["other"])
    assert field_errors(refused, "organisation_id") and 'data-testid="report"' not in refused
    assert client.get("/reports/records", query_string={**period(reported),
                                                        "organisation_id": reported["other"]}).status_code == 403
    records = page(client, "/reports/records", **period(reported))
    assert other_name not in records and "陪伴对象" not in records

    scorecard = page(client, "/reports/scorecard", organisation_id=reported["other"])  # its own, whatever is asked
    assert organisation_name(app, reported["org"], short=True) in scorecard
    assert organisation_name(app, reported["other"], short=True) not in scorecard and other_name not in scorecard

    with app.app_context():
        month = services.previous_month(district_today())
        other_contract = registry.list_contracts(COMMAND_LINE, organisation_id=reported["other"])[0][0].id
        theirs = services.freeze_contract_month(COMMAND_LINE, other_contract, month, accept_open_exceptions=True).id
    assert client.get(f"/reports/frozen/{theirs}").status_code == 404
    assert f'data-frozen="{theirs}"' not in page(client, "/reports/frozen")
    assert f'data-frozen="{theirs}"' in page(signed_in(app, "auditor"), "/reports/frozen")


def test_caregivers_get_no_report_pages_and_each_role_its_entries(app, reported):
    caregiver = signed_in(app, "caregiver")
    for url in ("/reports", f"/reports?from={reported['first']}&to={reported['last']}", "/reports/records",
                "/reports/definitions", "/reports/frozen", "/reports/frozen/1", "/reports/dashboard",
                "/reports/scorecard", "/reports/settlement", f"/reports/settlement?contract_id={reported['contract']}"):
        assert caregiver.get(url).status_code == 403, url
    refused = post(caregiver, "/reports/frozen", contract_id=reported["contract"], month=reported["month"])
    assert refused.status_code == 403

    def nav(username):
        return re.findall(r'data-nav="([a-z]+)"', signed_in(app, username).get("/").get_data(as_text=True))

    assert not {"reports", "performance", "scorecard"} & set(nav("caregiver"))
    assert {"reports"} <= set(nav("auditor")) and "performance" not in nav("auditor")
    assert {"reports", "performance"} <= set(nav("manager")) and "scorecard" not in nav("manager")
    assert {"reports", "scorecard"} <= set(nav("provider")) and "performance" not in nav("provider")
    html = page(signed_in(app, "auditor"), "/reports/records", **period(reported))
    assert re.search(r'<a href="/reports" data-nav="reports" aria-current="page">', html)


# --- frozen reports ------------------------------------------------------------------------------


def test_a_manager_freezes_a_month_and_reads_what_changed_since(app, reported):
    client = signed_in(app, "manager")
    form = page(client, "/reports/frozen")
    assert 'data-testid="freeze-form"' in form and f'value="{reported["month"]}"' in form  # last month, by default
    with app.app_context():
        undecided = services.settlement_undecided(COMMAND_LINE, reported["contract"], reported["month"])
    assert undecided > 0 and 'data-testid="accept-open-exceptions"' not in form  # no box before the page knows
    refused = post(client, "/reports/frozen", contract_id=reported["contract"], month=reported["month"])
    assert refused.status_code == 409
    shown = unescape(refused.get_data(as_text=True))
    refusal = re.search(r'data-testid="refusal" data-code="open_exceptions">([^<]+)<', shown)
    assert refusal and str(undecided) in refusal.group(1)
    assert re.search(rf'<input data-count="{undecided}" data-testid="accept-open-exceptions"[^>]*type="checkbox"', shown)
    assert f'value="{reported["month"]}"' in shown
    with app.app_context():
        assert services.list_frozen(COMMAND_LINE) == []  # nothing written
    response = post(client, "/reports/frozen", contract_id=reported["contract"], month=reported["month"],
                    accept_open_exceptions="y")
    assert response.status_code == 303 and re.fullmatch(r"/reports/frozen/\d+", response.headers["Location"])
    frozen_id = int(response.headers["Location"].rsplit("/", 1)[1])
    html = flashes(client, response)
    assert messages(html, "success") and reported["month"] in messages(html, "success")[0]
    assert str(undecided) in messages(html, "success")[0]
    assert 'data-unchanged="true"' in html and 'data-testid="unchanged"' in html
    assert re.search(rf'data-testid="frozen-open" data-count="{undecided}"', html)
    with app.app_context():
        frozen = services.get_frozen(COMMAND_LINE, frozen_id)
        stored_total, content_hash, record_count = frozen.figures["report"]["total"], frozen.content_hash, \
            frozen.record_count
    assert content_hash in html and f'data-testid="record-count">{record_count}<' in html
    assert total_row(html)["person_times"] == str(stored_total["person_times"])
    assert f'href="/api/v1/reports/frozen/{frozen_id}/export?format=pdf"' in html

    listed = page(client, "/reports/frozen")
    row = re.search(rf'<tr data-frozen="{frozen_id}".*?</tr>', listed, re.S).group(0)
    assert f'data-month="{reported["month"]}"' in row and f">{content_hash[:12]}</code>" in row
    assert f'href="/api/v1/reports/frozen/{frozen_id}/export?format=csv"' in row

    again = post(client, "/reports/frozen", contract_id=reported["contract"], month=reported["month"])
    assert again.status_code == 409
    assert field_errors(unescape(again.get_data(as_text=True)), "month") == ["该合同的这个月已经冻结。"]
    not_over = post(client, "/reports/frozen", contract_id=reported["contract"],
                    month=district_today().strftime("%Y-%m"))
    assert not_over.status_code == 422
    assert field_errors(unescape(not_over.get_data(as_text=True)), "month") == ["只能冻结已经结束的月份。"]

    visit_id = late_correction(app, reported)
    changed = page(signed_in(app, "auditor"), f"/reports/frozen/{frozen_id}")
    assert 'data-unchanged="false"' in changed and "freeze-form" not in changed
    assert total_row(changed)["person_times"] == str(stored_total["person_times"])  # as issued
    assert re.search(rf'<tr data-visit="{visit_id}" data-change="changed">', changed)
    figures = re.search(r'data-testid="changed-figures".*?</table>', changed, re.S).group(0)
    hours = re.search(r'<tr data-figure="service_hours">.*?</tr>', figures, re.S).group(0)
    assert "合计" in hours and figure("service_hours", stored_total["service_hours"]) in hours
    assert 'data-figure="person_times"' not in figures
    # the corrected visit has its times edited now: its settlement waits for that exception to be decided
    settled = re.search(r'data-testid="settlement-differences".*?</table>', changed, re.S).group(0)
    assert re.search(rf'<tr data-figure="verified" data-visit="{visit_id}">', settled)


def test_an_auditor_may_not_freeze(app, reported):
    client = signed_in(app, "auditor")
    assert "freeze-form" not in page(client, "/reports/frozen")
    assert post(client, "/reports/frozen", contract_id=reported["contract"], month=reported["month"]).status_code == 403


# --- the dashboard and the scorecard -------------------------------------------------------------


def test_the_manager_dashboard_shows_this_month_budget_burn_and_scores(app, reported):
    with app.app_context():
        services.compute_scores(reported["first"], reported["last"])
        today = district_today()
        month = services.kpi_report(COMMAND_LINE, today.replace(day=1), today)["total"]
        since = services.kpi_report(COMMAND_LINE, today.replace(month=1, day=1), today.replace(month=12, day=31),
                                    ("contract",))
    html = page(signed_in(app, "manager"), "/reports/dashboard")
    for code in ("person_times", "coverage", "missed", "delivered_value_fen"):
        assert re.search(rf'data-testid="{code}">{re.escape(figure(code, month[code]))}<', html), code
    burn = re.search(r'data-testid="budget-burn".*?</section>', html, re.S).group(0)
    for group in (g for g in since["groups"] if g["key"]["contract"] is not None):
        row = re.search(rf'<tr data-contract="{group["key"]["contract"]}">.*?</tr>', burn, re.S).group(0)
        assert f'data-testid="burn">{figure("budget_execution", group["figures"]["budget_execution"])}<' in row
        delivered = figure("delivered_value_fen", group["figures"]["delivered_value_fen"])
        assert f'data-testid="delivered">{delivered}<' in row
        assert '<span style="width: ' in row
    scores = re.search(r'data-testid="scores".*?</section>', html, re.S).group(0)
    own = re.search(rf'<tr data-organisation="{reported["org"]}">.*?</tr>', scores, re.S).group(0)
    assert re.search(r'data-testid="score">\d+\.\d%<', own)
    assert f'href="/reports/scorecard?organisation_id={reported["org"]}"' in own

    town = page(signed_in(app, "manager.dagang"), "/reports/dashboard")  # a contract's burn is the district's
    town_burn = re.search(r'data-testid="budget-burn".*?</section>', town, re.S).group(0)
    assert re.findall(r'data-testid="burn">[^<]*<', town_burn) == re.findall(r'data-testid="burn">[^<]*<', burn)


def test_a_provider_reads_its_scorecard(app, reported):
    with app.app_context():
        services.compute_scores(reported["first"], reported["last"])
        services.freeze_contract_month(COMMAND_LINE, reported["contract"], reported["month"],
                                       accept_open_exceptions=True)
        today = district_today()
        first = kpis.add_months(today.replace(day=1), -1)
        expected = services.kpi_report(COMMAND_LINE, first, today, ("month",), organisation_id=reported["org"])
    html = page(signed_in(app, "provider"), "/reports/scorecard")
    assert organisation_name(app, reported["org"], short=True) in html and 'name="organisation_id"' not in html
    table = re.search(r'data-testid="scorecard-table".*?</table>', html, re.S).group(0)
    for group in expected["groups"]:
        label = group["key"]["month"]
        for code in ("person_times", "on_time_rate", "missed", "satisfaction_mean", "delivered_value_fen"):
            row = re.search(rf'<tr data-figure="{code}">.*?</tr>', table, re.S).group(0)
            assert f'data-month="{label}">{figure(code, group["figures"][code])}<' in row, (label, code)
    card = re.search(r'data-testid="score-card".*?</section>', html, re.S).group(0)
    assert re.search(r'data-testid="score">\d+\.\d%<', card)
    assert re.findall(r'data-component="(\w+)"', card) == ["on_time", "not_missed", "satisfaction", "continuity",
                                                          "completion", "submitted", "no_exceptions"]
    assert re.search(r'<a href="/reports/frozen/\d+" data-frozen="\d+">' + reported["month"], html)
