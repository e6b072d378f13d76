"""POST /api/v1/imports: dry runs report every bad row, commits write all rows or none, duplicates are
reported, scoping holds, and malformed or oversized uploads get a clear error and change nothing."""

from __future__ import annotations

import io

import pytest
from sqlalchemy import func, select
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from servicehub.auth.models import AuditLog
from servicehub.extensions import db
from servicehub.imports.samples import SAMPLE_ORGANISATION
from servicehub.registry.identifiers import id_number_check_digit
from servicehub.registry.models import Need, Recipient, Worker
from tests.imports.support import RECIPIENT_HEADER, csv_bytes, recipient_row, recipient_rows, xlsx
from tests.support import DEMO_PASSWORD

EN = {"Accept-Language": "en"}


def multipart(form: dict) -> tuple[bytes, str]:
    """A multipart body built in memory (the test client would leave a large one in an unclosed temp file)."""
    values = {k: FileStorage(io.BytesIO(v[0]), v[1], content_type="application/octet-stream") if isinstance(v, tuple)
              else v for k, v in form.items()}
    boundary, body = encode_multipart(values)
    return body, f"multipart/form-data; boundary={boundary}"


def post_form(client, headers, form: dict):
    body, content_type = multipart(form)
    return client.post("/api/v1/imports", data=body, headers={**headers, **EN}, content_type=content_type)


def upload(client, headers, data: bytes, *, kind="recipients", name="名单.xlsx", dry_run=None):
    form = {"file": (data, name), "kind": kind}
    if dry_run is not None:
        form["dry_run"] = "true" if dry_run else "false"
    return post_form(client, headers, form)


def counts(app) -> dict[str, int]:
    with app.app_context():
        return {model.__tablename__: db.session.scalar(select(func.count()).select_from(model))
                for model in (Recipient, Need, Worker, AuditLog)}


def problems(response) -> list[tuple[int, str, str]]:
    return [(p["row"], p["column"], p["code"]) for p in response.get_json()["report"]["problems"]]


def wrong_check_digit(id_number: str) -> str:
    right = id_number_check_digit(id_number[:17])
    return id_number[:17] + ("0" if right != "0" else "1")


# --- dry run and commit ---------------------------------------------------------------------


def test_a_dry_run_reports_every_bad_row_with_row_column_and_reason_and_writes_nothing(app, client, auth_headers):
    manager = auth_headers("manager")
    good = recipient_row(1)
    rows = [RECIPIENT_HEADER, good,
            recipient_row(2, 身份证号=wrong_check_digit(recipient_row(2)[1])),
            recipient_row(3, 救助类别="低保户"),
            recipient_row(4, 纬度=39.9, 经度=116.4),
            recipient_row(5, **{"所属社区(编码)": "999999999"})]
    before = counts(app)
    response = upload(client, manager, xlsx(rows))
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    assert body["code"] == "validation_error" and "nothing was written" in body["message"]
    report = body["report"]
    assert (report["rows"], report["valid"], report["invalid"], report["duplicates"]) == (5, 1, 4, 0)
    assert report["dry_run"] is True and report["committed"] is False
    assert problems(response) == [(3, "身份证号", "invalid"), (4, "救助类别", "invalid"), (5, "纬度", "invalid"),
                                  (6, "所属社区(编码)", "invalid")]
    by_row = {p["row"]: p for p in report["problems"]}
    assert "check digit" in by_row[3]["reason"] and by_row[3]["field"] == "id_number"
    assert "低保户" in by_row[4]["reason"] and "低保" in by_row[4]["reason"]
    assert "outside the district" in by_row[5]["reason"]
    assert body["errors"]["rows"]["3"]["身份证号"] == [by_row[3]["reason"]]
    assert counts(app) == before


def test_a_clean_dry_run_is_200_and_writes_nothing(app, client, auth_headers):
    manager = auth_headers("manager")
    before = counts(app)
    response = upload(client, manager, xlsx(recipient_rows(3)))  # dry_run defaults to true
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert (body["rows"], body["valid"], body["invalid"], body["committed"], body["created"]) == (3, 3, 0, False, 0)
    assert [c["field"] for c in body["columns"]][:3] == ["name", "id_number", "assistance_class"]
    assert counts(app) == before


def test_a_commit_writes_every_row_in_one_transaction_with_one_import_event(app, client, auth_headers):
    manager = auth_headers("manager")
    before = counts(app)
    response = upload(client, manager, xlsx(recipient_rows(4)), dry_run=False, name="大港名单.xlsx")
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["created"] == 4 and response.get_json()["committed"] is True
    after = counts(app)
    assert after["recipients"] == before["recipients"] + 4
    with app.app_context():
        events = db.session.scalars(select(AuditLog).where(AuditLog.action == "import")).all()
        assert [(e.entity_type, e.changes["file_name"], e.changes["rows"], e.actor) for e in events] == [
            ("recipients", "大港名单.xlsx", 4, "manager")
        ]
        created = db.session.scalars(select(AuditLog).where(AuditLog.action == "create",
                                                            AuditLog.entity_type == "recipients")).all()
        assert len(created) == 4  # every row audited by the session hook
        stored = db.session.scalars(select(Recipient).order_by(Recipient.id)).first()
        assert stored.assistance_class.code == "dibao" and stored.subclass == "dibao_elderly"
        assert stored.id_number_encrypted.startswith("v1:")


def test_one_bad_row_means_nothing_is_written(app, client, auth_headers):
    rows = recipient_rows(6)
    rows[4][2] = "不存在的类别"
    manager = auth_headers("manager")
    before = counts(app)
    response = upload(client, manager, xlsx(rows), dry_run=False)
    assert response.status_code == 422
    assert problems(response) == [(5, "救助类别", "invalid")]
    assert response.get_json()["report"]["committed"] is False
    assert counts(app) == before  # recipients, needs, workers and the audit log untouched


def test_english_headers_and_gb18030_csv_are_accepted(app, client, auth_headers):
    rows = recipient_rows(2)
    rows[0] = ["name", "id_number", "assistance_class", "subclass", "area", "address", "lat", "lon", "phone"]
    response = upload(client, auth_headers("manager"), csv_bytes(rows, "gb18030"), name="export.csv", dry_run=False)
    assert response.status_code == 201, response.get_json()
    assert (response.get_json()["file_format"], response.get_json()["encoding"]) == ("csv", "gb18030")


def test_unknown_columns_are_ignored_and_reported(client, auth_headers):
    rows = [row + [extra] for row, extra in zip(recipient_rows(1), ["户籍性质", "城镇"], strict=True)]
    response = upload(client, auth_headers("manager"), xlsx(rows))
    assert response.status_code == 200 and response.get_json()["ignored_columns"] == ["户籍性质"]


# --- duplicates -----------------------------------------------------------------------------


def test_duplicates_in_the_file_and_in_the_database_are_reported_never_merged(app, client, auth_headers):
    manager = auth_headers("manager")
    assert upload(client, manager, xlsx(recipient_rows(1)), dry_run=False).status_code == 201
    with app.app_context():
        existing_id = db.session.scalar(select(Recipient.id))
    registered = recipient_row(1, name="改了名字")
    twin = recipient_row(7)
    rows = [RECIPIENT_HEADER, registered, twin, recipient_row(8), twin]
    before = counts(app)
    response = upload(client, manager, xlsx(rows), dry_run=False)
    assert response.status_code == 422
    report = response.get_json()["report"]
    assert (report["rows"], report["valid"], report["invalid"], report["duplicates"]) == (4, 2, 2, 2)
    first, second = report["problems"]
    assert (first["row"], first["column"], first["code"], first["existing_id"]) == (2, "身份证号", "duplicate", existing_id)
    assert (second["row"], second["code"], second["existing_id"]) == (5, "duplicate", None)
    assert "row 3" in second["reason"]
    assert counts(app) == before
    with app.app_context():
        assert db.session.get(Recipient, existing_id).name == "测试对象"  # not overwritten


def test_a_town_manager_imports_only_into_their_town_and_sees_no_other_towns_ids(app, client, auth_headers):
    assert upload(client, auth_headers("manager"), xlsx([RECIPIENT_HEADER, recipient_row(9, area="321191002")]),
                  dry_run=False).status_code == 201
    rows = [RECIPIENT_HEADER, recipient_row(1), recipient_row(2, area="321191002"), recipient_row(9, area="321191001")]
    town_manager = auth_headers("manager.dagang")
    before = counts(app)
    response = upload(client, town_manager, xlsx(rows), dry_run=False)
    assert response.status_code == 422
    assert problems(response) == [(3, "所属社区(编码)", "forbidden"), (4, "身份证号", "duplicate")]
    assert response.get_json()["report"]["problems"][1]["existing_id"] is None  # in another town: not revealed
    assert counts(app) == before
    ok = upload(client, auth_headers("manager.dagang"), xlsx([RECIPIENT_HEADER, recipient_row(1)]), dry_run=False)
    assert ok.status_code == 201


# --- needs and workers ----------------------------------------------------------------------

NEED_HEADER = ["身份证号", "姓名", "服务项目编码", "数量", "周期", "服务日", "服务时段", "开始日期"]


def test_needs_find_their_recipient_by_id_number(app, client, auth_headers):
    manager = auth_headers("manager")
    assert upload(client, manager, xlsx(recipient_rows(2)), dry_run=False).status_code == 201
    first, second = recipient_row(1)[1], recipient_row(2)[1]
    rows = [NEED_HEADER,
            [first, "测试对象", "LC01", 5, "每周", "周一至周五", "10:30-12:30", "2026-01-05"],
            [second, "测试对象", "助洁", 1, "每周", "周三", "", "2026-01-05"],
            [recipient_row(3)[1], "测试对象", "LC01", 1, "每周", "", "", "2026-01-05"],  # not registered
            [first, "别人", "LC02", 1, "每周", "", "", "2026-01-05"],  # name differs
            [second, "测试对象", "CD01", 1, "每周", "", "", "2026-01-05"],  # not for a 低保 recipient
            [first, "测试对象", "LC01", 5, "每周", "周一,周三", "", "2026-01-05"]]  # 5 a week on 2 days
    before = counts(app)
    response = upload(client, manager, xlsx(rows), kind="needs", dry_run=False)
    assert response.status_code == 422
    assert problems(response) == [(4, "身份证号", "not_found"), (5, "姓名", "invalid"), (6, "服务项目编码", "invalid"),
                                  (7, "数量", "invalid")]
    assert counts(app) == before
    response = upload(client, manager, xlsx(rows[:3]), kind="needs", dry_run=False)
    assert response.status_code == 201, response.get_json()
    with app.app_context():
        needs = db.session.scalars(select(Need).order_by(Need.id)).all()
        assert [(n.service_type.code, n.preferred_days, n.window_start.strftime("%H:%M")) for n in needs] == [
            ("LC01", [1, 2, 3, 4, 5], "10:30"), ("LC02", [3], "08:30")]


def test_a_town_manager_cannot_import_needs_of_another_towns_recipients(app, client, auth_headers):
    rows = [RECIPIENT_HEADER, recipient_row(1, area="321191002")]
    assert upload(client, auth_headers("manager"), xlsx(rows), dry_run=False).status_code == 201
    need = [NEED_HEADER, [recipient_row(1)[1], "测试对象", "LC01", 1, "每周", "", "", "2026-01-05"]]
    response = upload(client, auth_headers("manager.dagang"), xlsx(need), kind="needs")
    assert response.status_code == 422 and problems(response) == [(2, "身份证号", "not_found")]


WORKER_HEADER = ["所属组织", "工号", "姓名", "性别", "手机号", "出发点纬度", "出发点经度", "可服务时间", "资质"]


def worker_row(number: str, organisation: str = SAMPLE_ORGANISATION, **changes) -> list:
    row = {"所属组织": organisation, "工号": number, "姓名": "赵红梅", "性别": "女", "手机号": "13852901001",
           "出发点纬度": 32.203, "出发点经度": 119.682, "可服务时间": "周一至周五 08:00-12:00", "资质": "康复治疗师:2027-06-30"}
    row.update(changes)
    return [row[h] for h in WORKER_HEADER]


def test_a_provider_imports_only_its_own_workers(app, client, auth_headers):
    provider = auth_headers("provider")
    other = "52321191MJ0002002L"
    rows = [WORKER_HEADER, worker_row("T001"), worker_row("T002", other), worker_row("T001", 性别="男")]
    before = counts(app)
    response = upload(client, provider, xlsx(rows), kind="workers", dry_run=False)
    assert response.status_code == 422
    assert problems(response) == [(3, "所属组织", "invalid"), (4, "工号", "duplicate")]
    assert counts(app) == before
    own = [WORKER_HEADER, worker_row("T001"), worker_row("T002")]
    assert upload(client, provider, xlsx(own), kind="workers", dry_run=False).status_code == 201
    without_organisation = [row[1:] for row in [WORKER_HEADER, worker_row("T003")]]
    assert upload(client, provider, xlsx(without_organisation), kind="workers", dry_run=False).status_code == 201
    with app.app_context():
        workers = db.session.scalars(select(Worker).order_by(Worker.id)).all()
        assert {w.organisation.credit_code for w in workers} == {SAMPLE_ORGANISATION}
        assert workers[0].qualifications[0].qualification.code == "rehab_therapist"
        assert workers[0].availability["fri"] == [["08:00", "12:00"]]


@pytest.mark.parametrize("username", ["caregiver", "auditor"])
def test_roles_without_the_import_permission_are_refused(client, auth_headers, username):
    response = upload(client, auth_headers(username), xlsx(recipient_rows(1)))
    assert response.status_code == 403 and response.get_json()["code"] == "forbidden"


@pytest.mark.parametrize("kind", ["recipients", "needs"])
def test_a_provider_may_not_import_recipients_or_needs(client, auth_headers, kind):
    response = upload(client, auth_headers("provider"), xlsx(recipient_rows(1)), kind=kind)
    assert response.status_code == 403 and "recipients.manage" in response.get_json()["message"]


def test_imports_need_credentials(client, demo):
    response = client.post("/api/v1/imports", data={"kind": "recipients"}, content_type="multipart/form-data")
    assert response.status_code == 401


# --- malformed and oversized uploads --------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "name", "reason"),
    [(b"%PDF-1.7\n binary", "名单.pdf", "PDF"), (b"\x89PNG\r\n\x1a\n\x00\x00\x00", "名单.xlsx", "PNG"),
     (b"", "empty.csv", "empty"), (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(512), "old.xls", ".xls"),
     ("姓名,身份证号\n".encode(), "header.csv", "no data rows")],
)
def test_files_that_are_not_usable_spreadsheets_are_422_and_change_nothing(app, client, auth_headers, data, name,
                                                                          reason):
    manager = auth_headers("manager")
    before = counts(app)
    response = upload(client, manager, data, name=name, dry_run=False)
    assert response.status_code == 422
    body = response.get_json()
    assert body["code"] == "validation_error" and reason in body["errors"]["file"][0]
    assert counts(app) == before


def test_missing_required_columns_are_named(client, auth_headers):
    response = upload(client, auth_headers("manager"), xlsx([["姓名", "住址"], ["甲", "某路1号"]]))
    assert response.status_code == 422
    message = " ".join(response.get_json()["errors"]["file"])
    for column in ("身份证号", "救助类别", "所属社区(编码)", "纬度", "经度"):
        assert column in message


@pytest.mark.parametrize(
    ("form", "field"),
    [({"kind": "recipients"}, "file"), ({"kind": "visits", "file": (b"x", "a.csv")}, "kind"),
     ({"kind": "recipients", "file": "not a file part"}, "file")],
)
def test_a_malformed_request_is_422_naming_the_field(client, auth_headers, form, field):
    response = post_form(client, auth_headers("manager"), form)
    assert response.status_code == 422 and field in response.get_json()["errors"]


def test_a_50_mb_upload_is_a_clear_413_and_changes_nothing(app, client, auth_headers):
    manager = auth_headers("manager")
    before = counts(app)
    response = upload(client, manager, b"a" * (50 * 1024 * 1024), name="huge.csv", dry_run=False)
    assert response.status_code == 413
    body = response.get_json()
    assert body["code"] == "request_entity_too_large" and "10 MB" in body["message"]
    assert counts(app) == before


def test_an_upload_over_the_request_limit_is_a_413_problem_too(make_app, demo):
    app = make_app(MAX_CONTENT_LENGTH=64 * 1024)
    client = app.test_client()
    token = client.post("/api/v1/auth/tokens", json={"username": "manager", "password": DEMO_PASSWORD})
    headers = {"Authorization": f"Bearer {token.get_json()['token']}"}
    response = upload(client, headers, b"a" * (128 * 1024), name="big.csv")
    assert response.status_code == 413 and response.mimetype == "application/problem+json"


def test_the_limits_are_configurable(make_app, demo):
    app = make_app(SERVICEHUB_IMPORT_MAX_ROWS=10, SERVICEHUB_IMPORT_MAX_BYTES=4096)
    client = app.test_client()
    token = client.post("/api/v1/auth/tokens", json={"username": "manager", "password": DEMO_PASSWORD})
    headers = {"Authorization": f"Bearer {token.get_json()['token']}"}
    response = upload(client, headers, csv_bytes(recipient_rows(11)), name="x.csv")
    assert response.status_code == 422 and "more than 10 data rows" in response.get_json()["message"]
    response = upload(client, headers, b"a" * 5000, name="x.csv")
    assert response.status_code == 413


def test_100000_rows_are_refused_by_the_row_limit_with_a_clear_message(app, client, auth_headers):
    rows = [RECIPIENT_HEADER[:8]] + [[f"人{n}", f"3211911940{n:08d}", "低保", "", "321191001", "路", 32.2, 119.68]
                                       for n in range(100_000)]
    rows[50_001][1] = "not an id number"
    data = csv_bytes(rows)
    assert len(data) < 10 * 1024 * 1024
    manager = auth_headers("manager")
    before = counts(app)
    response = upload(client, manager, data, name="all.csv", dry_run=False)
    assert response.status_code == 422
    assert "more than 50000 data rows" in response.get_json()["message"]
    assert counts(app) == before


LARGE = 2000


def test_a_large_file_with_one_bad_row_in_the_middle(app, client, auth_headers):
    rows = recipient_rows(LARGE)
    middle = LARGE // 2
    rows[middle][1] = wrong_check_digit(rows[middle][1])
    data = xlsx(rows)
    manager = auth_headers("manager")
    before = counts(app)
    dry = upload(client, manager, data, name="large.xlsx")
    assert dry.status_code == 422
    assert problems(dry) == [(middle + 1, "身份证号", "invalid")]
    assert dry.get_json()["report"]["valid"] == LARGE - 1
    committed = upload(client, manager, data, name="large.xlsx", dry_run=False)
    assert committed.status_code == 422 and problems(committed) == [(middle + 1, "身份证号", "invalid")]
    assert counts(app) == before
