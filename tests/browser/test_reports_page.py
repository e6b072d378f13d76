"""The report page in real Chromium, on a server of its own with a quarter of the demo provider's service
history in the ledger: an auditor picks a period and a grouping, reads the table and the charts, follows a
group to the records behind it (their sums are the group's figures) and downloads the report."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from servicehub.auth.permissions import COMMAND_LINE
from servicehub.evaluation import kpis, services
from servicehub.evaluation.views import figure
from servicehub.visits.history import write_demo_history
from tests.browser.conftest import live_app, serving, sign_in
from tests.scheduling.test_pages import serve_district


@pytest.fixture(scope="module")
def reporting(tmp_path_factory):
    """A server of its own (the shared live server keeps only the reference parts of the demo): the demo
    provider in service and the last quarter of its visits and service records written by the history writer."""
    directory = tmp_path_factory.mktemp("reports-live")
    app = live_app(directory)
    with app.app_context():
        district = serve_district()
        written = write_demo_history(years=0.25, seed=11)
        assert written.written and written.completed > 100, written.message
    with serving(app) as server:
        yield server, district


def number(text: str) -> int:
    return int(text.replace(",", ""))


@pytest.mark.browser
def test_an_auditor_reports_a_month_by_worker_drills_down_and_downloads(page, reporting):
    server, district = reporting
    first = kpis.add_months(district.today.replace(day=1), -1)
    last = district.today.replace(day=1) - timedelta(days=1)
    with server.app.app_context():
        expected = services.kpi_report(COMMAND_LINE, first, last, ("worker", "month"))
    assert len(expected["groups"]) >= 2

    sign_in(page, server, "auditor")
    page.wait_for_url(f"{server.url}/")
    page.click("nav [data-nav=reports]")
    page.wait_for_url(re.compile(r"/reports\?from=.*&group_by=organisation$"))
    assert page.locator("[data-testid=report-table]").is_visible()  # this month by organisation, to begin with

    page.click("[data-testid=quick-periods] a[data-period=last_month]")
    page.wait_for_url(re.compile(rf"from={first.isoformat()}&to={last.isoformat()}"))
    assert page.input_value("input[name=from]") == first.isoformat()
    assert page.input_value("input[name=to]") == last.isoformat()
    page.select_option("select[name=group_by]", "worker")
    page.select_option("select[name=period]", "month")
    page.click("[data-testid=show-report]")
    page.wait_for_url(re.compile(r"group_by=worker&period=month"))

    rows = page.locator("[data-testid=report-table] tbody tr[data-group]")
    assert rows.count() == len(expected["groups"])
    total = page.locator("[data-testid=report-table] [data-testid=total]")
    assert number(total.locator("[data-figure=person_times]").inner_text()) == expected["total"]["person_times"] > 50
    assert total.locator("[data-figure=delivered_value_fen]").inner_text() == \
        figure("delivered_value_fen", expected["total"]["delivered_value_fen"])
    assert page.locator("thead th[data-key=worker]").inner_text() == "服务人员"

    charts = page.locator("[data-testid=charts] svg")
    assert charts.count() == 3
    for k in range(3):
        box = charts.nth(k).bounding_box()
        assert box["width"] > 100 and box["height"] > 40
    assert charts.first.locator("rect").count() == len(expected["groups"])  # a bar per worker

    group = expected["groups"][0]
    row = rows.first
    assert number(row.locator("[data-figure=person_times]").inner_text()) == group["figures"]["person_times"]
    row.locator("a[data-testid=drill-down]").click()
    page.wait_for_url(re.compile(r"/reports/records\?.*worker_id=\d+&granularity=month&bucket=\d{4}-\d{2}"))
    records = page.locator("[data-testid=records] tbody tr[data-visit]")
    records.first.wait_for()
    assert page.locator("[data-testid=records] tr[data-outcome=delivered]").count() == group["figures"]["person_times"]
    assert page.locator("[data-testid=records] tr[data-outcome=missed]").count() == group["figures"]["missed"]
    sums = page.locator("[data-testid=sums]")
    for code in ("person_times", "missed", "service_hours", "delivered_value_fen"):
        assert sums.locator(f"[data-sum={code}]").inner_text() == figure(code, group["figures"][code]), code
    assert re.fullmatch(r"\d{2}:\d{2}–\d{2}:\d{2}", records.first.locator("td").nth(6).inner_text())

    page.click("[data-testid=back-to-report]")  # the report as it was
    page.wait_for_url(re.compile(r"/reports\?from=.*group_by=worker&period=month"))
    with page.expect_download() as downloaded:
        page.click("[data-testid=downloads] a[data-format=csv]")
    download = downloaded.value
    assert download.suggested_filename == f"servicehub-kpis-{first.isoformat()}-{last.isoformat()}.csv"
    with open(download.path(), encoding="utf-8-sig") as fh:
        lines = fh.read().splitlines()
    assert "服务人次 (person_times)" in lines[0] and len(lines) == len(expected["groups"]) + 2
    for fmt, mimetype in (("xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
                          ("pdf", "application/pdf")):
        href = page.locator(f"[data-testid=downloads] a[data-format={fmt}]").get_attribute("href")
        assert "group_by=worker,month" in href or "group_by=worker%2Cmonth" in href
        response = page.request.get(server.url + href)
        assert response.ok and response.headers["content-type"].startswith(mimetype), (fmt, response.status)
        assert len(response.body()) > 1000
