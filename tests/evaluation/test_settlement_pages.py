"""The settlement page, over the demo history's last month: the same figures as the API (lines, total, funding
split, visits not paid yet with their exceptions in words and where to deal with them), live or frozen with a clear
badge and the differences since; the freezing box that says how many exceptions are undecided; what a provider may
ask; the exceptions by code on the scorecard and the manager's dashboard. Assertions read data-* attributes."""

import re
from html import unescape

from servicehub.auth.permissions import COMMAND_LINE
from servicehub.evaluation import services
from servicehub.evaluation.views import money
from tests.evaluation.test_settlements import answer_every_exception, settlement_of
from tests.matching.test_pages import post
from tests.registry import factories as f
from tests.registry.test_pages import field_errors, signed_in
from tests.scheduling.fixtures import district_today


def page(client, status=200, **params) -> str:
    response = client.get("/reports/settlement", query_string=params)
    assert response.status_code == status, (params, response.status_code)
    return unescape(response.get_data(as_text=True))


def section(html: str, testid: str) -> str:
    match = re.search(rf'data-testid="{testid}".*?</(table|section|ul)>', html, re.S)
    assert match, testid
    return match.group(0)


def test_an_auditor_reads_a_settlement_as_the_api_gives_it(app, client, history):
    auditor = signed_in(app, "auditor")
    first = auditor.get("/reports/settlement")
    assert first.status_code == 302 and f"month={history['month']}" in first.headers["Location"]
    html = page(auditor, contract_id=history["contract"], month=history["month"])
    expected = settlement_of(client, "auditor", history).get_json()
    shown = expected["settlement"]
    assert f'data-frozen="false" data-total-fen="{shown["total_fen"]}"' in html
    assert 'data-testid="settlement-state" data-state="live"' in html
    assert re.search(r'<a href="/reports" data-nav="reports" aria-current="page">', html)  # under Reports
    assert f'data-testid="total">{money(shown["total_fen"])}<' in html
    lines = section(html, "settlement-lines")
    for line in shown["lines"]:
        row = re.search(rf'<tr data-line="{line["service_type"]}" data-billing="{line["billing"]}">.*?</tr>', lines,
                        re.S).group(0)
        assert f'data-figure="amount_fen">{money(line["amount_fen"])}<' in row
        assert f'data-figure="verified">{line["verified"]}<' in row
    total = re.search(r'<tr data-testid="settlement-total">.*?</tr>', lines, re.S).group(0)
    assert f'data-figure="total_fen">{money(shown["total_fen"])}<' in total
    funding = [int(x) for x in re.findall(r'data-amount-fen="(\d+)"', section(html, "settlement-funding"))]
    assert funding == [p["amount_fen"] for p in shown["by_funding"]] and sum(funding) == shown["total_fen"]

    unsettled = section(html, "unsettled")
    rows = re.findall(r'<tr data-visit="(\d+)">(.*?)</tr>', unsettled, re.S)
    assert [int(v) for v, _ in rows] == [row["visit_id"] for row in shown["unsettled"]]
    queue_pages = "visits_pages.exception" in app.view_functions
    for (visit_id, row), listed in zip(rows, shown["unsettled"], strict=True):
        codes = re.findall(r'data-code="(\w+)" data-status="(\w+)"', row)
        assert codes == [(e["code"], e["status"]) for e in listed["exceptions"]]
        if queue_pages:
            ids = expected["exception_ids"][visit_id]
            assert [f"/exceptions/{ids[e['code']]}" for e in listed["exceptions"]] == \
                re.findall(r'<a href="(/exceptions/\d+)"', row)
        else:
            assert 'data-testid="records-link"' in row
    assert re.search(rf'data-testid="undecided" data-count="{expected["undecided"]}"', html)

    links = dict((fmt, url) for url, fmt in re.findall(r'href="([^"]+)" data-format="(\w+)"', html))
    assert set(links) == {"csv", "xlsx", "pdf"}
    assert links["csv"].startswith(f"/api/v1/contracts/{history['contract']}/settlement/export?")
    download = auditor.get(links["csv"])
    assert download.status_code == 200 and download.mimetype == "text/csv"
    assert 'data-testid="freeze-form"' not in html  # auditors do not freeze


def test_a_manager_freezes_the_month_from_its_settlement_and_reads_what_changed(app, client, history):
    manager = signed_in(app, "manager")
    url = f"/reports/settlement?contract_id={history['contract']}&month={history['month']}"
    html = page(manager, contract_id=history["contract"], month=history["month"])
    with app.app_context():
        undecided = services.settlement_undecided(COMMAND_LINE, history["contract"], history["month"])
    box = section(html, "freeze")
    assert re.search(rf'<input data-count="{undecided}" data-testid="accept-open-exceptions"', box)
    assert f'name="back" type="hidden" value="{url}"' in box
    frozen = post(manager, "/reports/frozen", contract_id=history["contract"], month=history["month"],
                  accept_open_exceptions="y", back=url)
    assert frozen.status_code == 303 and frozen.headers["Location"] == url
    html = page(manager, contract_id=history["contract"], month=history["month"])
    assert 'data-frozen="true"' in html and 'data-testid="settlement-state" data-state="frozen"' in html
    assert re.search(rf'data-testid="frozen-open" data-count="{undecided}"', html)
    assert 'data-testid="freeze-form"' not in html  # frozen once
    assert 'data-unchanged="true"' in section(html, "settlement-changes")

    before = settlement_of(client, "manager", history).get_json()["settlement"]
    paid_later = before["unsettled"][0]
    answer_every_exception(app, history, paid_later["visit_id"])
    html = page(signed_in(app, "auditor"), contract_id=history["contract"], month=history["month"])
    assert f'data-total-fen="{before["total_fen"]}"' in html  # as frozen
    changes = section(html, "settlement-changes")
    assert 'data-unchanged="false"' in changes
    assert f'data-testid="current-total">{money(before["total_fen"] + paid_later["amount_fen"])}<' in changes
    assert re.search(rf'<tr data-figure="verified" data-visit="{paid_later["visit_id"]}">', changes)
    total = re.search(r'<tr data-figure="total_fen">.*?</tr>', changes, re.S).group(0)
    assert f'data-testid="frozen-value">{money(before["total_fen"])}<' in total

    frozen_id = settlement_of(client, "auditor", history).get_json()["frozen_id"]
    report = unescape(signed_in(app, "auditor").get(f"/reports/frozen/{frozen_id}").get_data(as_text=True))
    assert re.search(rf'<tr data-figure="verified" data-visit="{paid_later["visit_id"]}">',
                     section(report, "settlement-differences"))
    assert f'href="{url}"' in report  # the frozen report links to its settlement
    listed = unescape(signed_in(app, "auditor").get("/reports/frozen").get_data(as_text=True))
    assert re.search(rf'data-testid="settlement-link">{re.escape(money(before["total_fen"]))}<', listed)


def test_a_provider_asks_for_its_own_contracts_only(app, history):
    with app.app_context():
        other = f.contract(f.organisation_ids()[1], areas=[f.DINGMAO]).id
    provider = signed_in(app, "provider")
    assert 'data-testid="settlement"' in page(provider, contract_id=history["contract"], month=history["month"])
    refused = page(provider, 422, contract_id=other, month=history["month"])
    assert field_errors(refused, "contract_id") and 'data-testid="settlement"' not in refused
    assert 'data-testid="settlement"' in page(signed_in(app, "manager"), contract_id=other, month=history["month"])

    malformed = page(provider, 422, contract_id=history["contract"], month="2026-13")
    assert field_errors(malformed, "month")
    outside = page(provider, 422, contract_id=history["contract"], month="1999-01")
    assert field_errors(outside, "month") and 'data-testid="settlement"' not in outside


def test_the_scorecard_and_the_dashboard_count_exceptions_by_code(app, history):
    today = district_today()
    with app.app_context():
        first = services.month_of(history["month"])[0]
        own = services.exception_counts(COMMAND_LINE, first, today, organisation_id=history["org"])
        this_month = services.exception_counts(COMMAND_LINE, today.replace(day=1), today)
    assert own
    html = unescape(signed_in(app, "provider").get("/reports/scorecard").get_data(as_text=True))
    table = section(html, "exception-counts")
    for row in own:
        shown = re.search(rf'<tr data-code="{row["code"]}">.*?</tr>', table, re.S).group(0)
        assert f'data-count="standing">{row["standing"]}<' in shown
        assert f'data-count="undecided">{row["undecided"]}<' in shown
    assert len(re.findall(r'<tr data-code=', table)) == len(own)

    dashboard = unescape(signed_in(app, "manager").get("/reports/dashboard").get_data(as_text=True))
    table = section(dashboard, "exception-counts")
    assert sorted(re.findall(r'<tr data-code="(\w+)">', table)) == sorted(row["code"] for row in this_month)
    for row in this_month:
        shown = re.search(rf'<tr data-code="{row["code"]}">.*?</tr>', table, re.S).group(0)
        assert f'data-count="approved">{row["approved"]}<' in shown
