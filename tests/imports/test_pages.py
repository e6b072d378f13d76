"""The import page through the test client: upload, the dry-run report, commit, samples, who may."""

import io
import re
from html import unescape

import pytest

from servicehub.imports.services import SAMPLES_DIR
from tests.imports.support import recipient_rows, xlsx
from tests.imports.test_api import counts
from tests.web.test_pages import login


def signed_in(app, username):
    client = app.test_client()
    assert login(client, username).status_code == 302
    return client


def csrf(html: str) -> str:
    return re.search(r'name="csrf-token" content="([^"]+)"', html).group(1)


def check(client, data: bytes, name: str, kind: str = "recipients"):
    token = csrf(client.get("/imports").get_data(as_text=True))
    return client.post("/imports", data={"csrf_token": token, "kind": kind, "file": (io.BytesIO(data), name)},
                       content_type="multipart/form-data")


def commit_token(html: str) -> str:
    return re.search(r'name="token" value="([^"]+)"', html).group(1)


def commit(client, token: str):
    return client.post("/imports/commit", data={"csrf_token": csrf(client.get("/imports").get_data(as_text=True)),
                                                "token": token})


def test_the_page_offers_the_kinds_the_samples_and_the_columns(app, demo):
    client = signed_in(app, "manager")
    html = client.get("/imports").get_data(as_text=True)
    assert 'data-nav="imports"' in html
    for kind in ("recipients", "needs", "workers"):
        assert f'value="{kind}"' in html and f"/imports/samples/{kind}.xlsx" in html
    assert "身份证号" in html and "所属社区(编码)" in html


def test_a_provider_is_offered_workers_only(app, demo):
    html = signed_in(app, "provider").get("/imports").get_data(as_text=True)
    assert 'value="workers"' in html and 'value="recipients"' not in html


@pytest.mark.parametrize("username", ["caregiver", "auditor"])
def test_the_page_is_closed_to_roles_without_the_permission(app, demo, username):
    assert signed_in(app, username).get("/imports").status_code == 403


def test_samples_download(app, demo):
    client = signed_in(app, "manager")
    response = client.get("/imports/samples/needs.csv")
    assert response.status_code == 200 and response.data == (SAMPLES_DIR / "needs.csv").read_bytes()
    assert "attachment" in response.headers["Content-Disposition"]
    response.close()
    assert client.get("/imports/samples/..%2Fcatalog.toml").status_code == 404


def test_check_then_commit_the_same_file(app, demo):
    client = signed_in(app, "manager")
    before = counts(app)
    checked = check(client, (SAMPLES_DIR / "recipients.xlsx").read_bytes(), "recipients.xlsx")
    assert checked.status_code == 200
    html = checked.get_data(as_text=True)
    assert 'data-testid="import-report"' in html and 'data-problems="0"' in html
    assert counts(app) == before
    token = commit_token(html)
    done = commit(client, token)
    assert done.status_code == 200 and 'data-committed="true"' in done.get_data(as_text=True)
    assert counts(app)["recipients"] == before["recipients"] + 5
    again = commit(client, token)  # the kept file is gone once imported
    assert again.status_code == 404


def test_bad_rows_are_listed_with_row_column_and_reason_and_nothing_can_be_committed(app, demo):
    rows = recipient_rows(3)
    rows[3][2] = "低保户"
    client = signed_in(app, "manager")
    response = check(client, xlsx(rows), "名单.xlsx")
    assert response.status_code == 422
    html = unescape(response.get_data(as_text=True))
    row = re.search(r'<tr data-row="4" data-code="invalid">(.*?)</tr>', html, re.S).group(1)
    assert "救助类别" in row and "低保户" in row
    assert 'name="token"' not in html


def test_a_file_that_is_not_a_spreadsheet_is_shown_as_an_error(app, demo):
    client = signed_in(app, "manager")
    response = check(client, b"%PDF-1.4 not a sheet", "名单.pdf")
    assert response.status_code == 422
    assert "PDF" in unescape(response.get_data(as_text=True))


def test_only_the_uploader_can_commit_a_kept_file(app, demo):
    manager = signed_in(app, "manager")
    html = check(manager, (SAMPLES_DIR / "recipients.csv").read_bytes(), "recipients.csv").get_data(as_text=True)
    token = commit_token(html)
    other = signed_in(app, "admin")
    before = counts(app)
    assert commit(other, token).status_code == 404
    assert commit(other, "x" * 32).status_code == 404
    assert commit(other, "../../secret_key").status_code == 400
    assert counts(app) == before


def test_the_upload_needs_the_csrf_token(app, demo):
    client = signed_in(app, "manager")
    response = client.post("/imports", data={"kind": "recipients", "file": (io.BytesIO(b"x"), "a.csv")},
                           content_type="multipart/form-data")
    assert response.status_code == 400
