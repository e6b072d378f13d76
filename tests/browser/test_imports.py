"""The import page in real Chromium: a manager checks a sample file, reads the report, commits it."""

import re

import pytest

from servicehub.imports.services import SAMPLES_DIR
from tests.browser.conftest import sign_in
from tests.imports.support import recipient_rows, xlsx


@pytest.mark.browser
def test_a_manager_checks_a_sample_then_imports_it(page, live_server):
    sign_in(page, live_server, "manager")
    page.wait_for_url(f"{live_server.url}/")
    page.click("nav [data-nav=imports]")
    page.wait_for_url(re.compile(r"/imports$"))
    assert page.locator("[data-testid=samples] a[href$='/imports/samples/recipients.xlsx']").is_visible()
    page.select_option("select[name=kind]", "recipients")
    page.set_input_files("input[name=file]", str(SAMPLES_DIR / "recipients.xlsx"))
    page.click("[data-testid=check]")
    report = page.locator("[data-testid=import-report]")
    report.wait_for()
    assert report.get_attribute("data-problems") == "0" and report.get_attribute("data-committed") == "false"
    assert "recipients.xlsx" in page.locator("[data-testid=import-summary]").inner_text()
    page.once("dialog", lambda dialog: dialog.accept())  # "Import all 5 rows of recipients.xlsx?"
    page.click("[data-testid=commit]")
    page.wait_for_selector("[data-testid=import-report][data-committed=true]")
    assert page.locator(".flash.success").is_visible()
    assert "5" in page.locator("[data-testid=import-message]").inner_text()


@pytest.mark.browser
def test_bad_rows_are_listed_and_cannot_be_committed(page, live_server, tmp_path):
    rows = recipient_rows(3)
    rows[2][2] = "低保户"
    path = tmp_path / "名单.xlsx"
    path.write_bytes(xlsx(rows))
    sign_in(page, live_server, "manager")
    page.wait_for_url(f"{live_server.url}/")
    page.goto(f"{live_server.url}/imports")
    page.set_input_files("input[name=file]", str(path))
    page.click("[data-testid=check]")
    problem = page.locator("[data-testid=import-problems] tr[data-row='3']")
    problem.wait_for()
    assert "救助类别" in problem.inner_text() and "低保户" in problem.inner_text()
    assert page.locator("[data-testid=commit]").count() == 0
