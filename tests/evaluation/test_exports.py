"""Report downloads through the API: CSV, XLSX and PDF of the same report agree with the JSON report; the PDF
has Chinese text in an embedded CJK font, charts, and the definitions word for word; a provider gets only its
own organisation."""

import csv
import io
import re
import shutil
import subprocess
from datetime import time as clock
from datetime import timedelta

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from servicehub.auth.permissions import COMMAND_LINE
from servicehub.evaluation import exports
from servicehub.evaluation import services as evaluation
from servicehub.evaluation.kpis import DEFINITION_BY_CODE, FIGURES
from servicehub.extensions import db
from servicehub.registry.models import Contract, Organisation
from servicehub.scheduling import services as scheduling
from servicehub.visits.history import write_demo_history
from tests.registry import factories as f
from tests.scheduling.fixtures import EVERY_DAY, accept_all, district_today
from tests.support import truthy, unavailable

SHEETS = ["摘要 Summary", "按机构 By organisation", "按服务项目 By service type", "按镇街 By town", "服务记录 Records",
          "指标定义 Definitions"]
ID_NUMBER = re.compile(r"\d{17}[\dX]")


@pytest.fixture
def two_organisations(app, served):
    """Five weeks of two organisations' ledger (by the demo history writer): the served provider's five
    recipients in 大港街道 and a second organisation's three in 丁卯街道, all needing daily cleaning."""
    with app.app_context():
        own, other = served["org"], f.organisation_ids()[1]
        f.worker(other, name="赵护理", availability=EVERY_DAY, start_lat=32.155, start_lon=119.520, employee_no="B1")
        f.contract(other, areas=[f.DINGMAO],
                   lines=[{"service_type": "LC02", "unit_price_fen": 5000, "contracted_quantity": 300}])
        people = [f.recipient(name=f"丁卯对象{k}", id_number=f.id_number(female=True), area=f.DINGMAO,
                              lat=32.155 + 0.002 * k, lon=119.520) for k in range(3)]
        accept_all(other, [f.need(p.id, quantity=7, window_start=clock(8, 30), window_end=clock(16, 30),
                                  duration_min=60).id for p in people])
        scheduling.generate_visits(COMMAND_LINE)
        report = write_demo_history(years=0.1, seed=7, target=160)
        assert report.written, report.message
        names = dict(db.session.execute(select(Organisation.id, Organisation.name_zh)
                                        .where(Organisation.id.in_((own, other)))).all())
        contract = db.session.scalar(select(Contract.id).where(Contract.organisation_id == own))
    today = district_today()
    return {**served, "own": own, "other": other, "names": names, "contract": contract,
            "month": evaluation.previous_month(today), "first": today - timedelta(days=36),
            "last": today - timedelta(days=1)}


def period(data: dict) -> dict:
    """The five weeks, as report query parameters."""
    return {"from": data["first"].isoformat(), "to": data["last"].isoformat()}


def download(client, data: dict, who: str, fmt: str, **query) -> bytes:
    """GET the report's export as `who`; checks the response is the file it says it is."""
    response = client.get("/api/v1/reports/kpis/export", headers=data[who],
                          query_string={**period(data), **query, "format": fmt})
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    assert response.mimetype == exports.MIMETYPES[fmt]
    first, last = period(data).values()
    assert response.headers["Content-Disposition"] == f'attachment; filename="servicehub-kpis-{first}-{last}.{fmt}"'
    return response.data


def json_report(client, data: dict, who: str, **query) -> dict:
    """The same report as JSON."""
    response = client.get("/api/v1/reports/kpis", headers=data[who], query_string={**period(data), **query})
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def csv_rows(content: bytes) -> list[list[str]]:
    """The CSV's rows; it must be UTF-8 with a BOM."""
    assert content.startswith("\ufeff".encode())
    return list(csv.reader(io.StringIO(content.decode("utf-8-sig"))))


def as_csv(value) -> str:
    """A JSON figure as the CSV writes it."""
    return "" if value is None else str(value)


def workbook(content: bytes):
    """The XLSX as openpyxl reads it."""
    return load_workbook(io.BytesIO(content))


def summary_figures(book) -> dict:
    """Figure code -> value on the summary sheet."""
    return {row[0]: row[3] for row in book["摘要 Summary"].iter_rows(values_only=True) if row[0] in FIGURES}


def summary_facts(book) -> dict:
    """Label -> value of the summary sheet's first two columns."""
    return dict(row[:2] for row in book["摘要 Summary"].iter_rows(values_only=True) if row[0])


def records_of(book) -> list[tuple]:
    """The records sheet's rows under its header."""
    return list(book["服务记录 Records"].iter_rows(min_row=2, values_only=True))


def every_text(book) -> str:
    """Every cell of every sheet as one text."""
    return "\n".join(str(value) for sheet in book for row in sheet.iter_rows(values_only=True)
                     for value in row if value is not None)


def by_organisation(report: dict, code: str) -> dict[int, object]:
    """Organisation id -> a figure of a report grouped by organisation."""
    return {g["key"]["organisation"]: g["figures"][code] for g in report["groups"]}


def test_the_csv_total_row_equals_the_json_report(client, two_organisations):
    data = two_organisations
    rows = csv_rows(download(client, data, "auditor", "csv", group_by="organisation"))
    report = json_report(client, data, "auditor", group_by="organisation")
    assert rows[0] == ["organisation"] + [f"{DEFINITION_BY_CODE[code].name_zh} ({code})" for code in FIGURES]
    assert rows[-1] == ["合计 total"] + [as_csv(report["total"][code]) for code in FIGURES]
    assert report["total"]["person_times"] > 50 and report["total"]["missed"] > 0
    person_times = by_organisation(report, "person_times")
    assert {row[0]: int(row[1 + FIGURES.index("person_times")]) for row in rows[1:-1]} == \
        {data["names"][org]: count for org, count in person_times.items()}
    assert set(person_times) == {data["own"], data["other"]} and all(person_times.values())


def test_the_xlsx_has_its_sheets_every_record_and_the_json_totals(client, two_organisations):
    data = two_organisations
    book = workbook(download(client, data, "auditor", "xlsx"))
    report = json_report(client, data, "auditor")
    drilled = client.get("/api/v1/reports/records", headers=data["auditor"], query_string=period(data)).get_json()
    assert book.sheetnames == SHEETS

    figures = summary_figures(book)
    assert figures["person_times"] == report["total"]["person_times"] > 50
    assert figures["delivered_value_fen"] == report["total"]["delivered_value_fen"] / 100  # shown in yuan
    assert figures["on_time_rate"] == report["total"]["on_time_rate"]
    assert summary_facts(book)["范围 Scope"] == "全区 District-wide"
    records = records_of(book)
    assert sorted(row[1] for row in records) == sorted(r["visit_id"] for r in drilled["records"])
    assert sum(row[9] == "已完成 delivered" for row in records) == report["total"]["person_times"]
    assert sum(row[9] == "漏服务 missed" for row in records) == report["total"]["missed"]
    assert {row[2] for row in records} == set(data["names"].values())
    assert sum(row[16] or 0 for row in records) == pytest.approx(report["total"]["delivered_value_fen"] / 100)
    assert book["服务记录 Records"].freeze_panes == "C2"

    grouped = json_report(client, data, "auditor", group_by="organisation")
    sheet = {row[1] or row[0]: row for row in book["按机构 By organisation"].iter_rows(min_row=3, values_only=True)}
    column = 3 + FIGURES.index("person_times")
    assert {name: row[column] for name, row in sheet.items()} == {
        **{data["names"][org]: count for org, count in by_organisation(grouped, "person_times").items()},
        "合计 Total": report["total"]["person_times"]}
    definitions = {row[0]: row for row in book["指标定义 Definitions"].iter_rows(min_row=2, values_only=True)}
    assert definitions["corrected_rate"][5] == DEFINITION_BY_CODE["corrected_rate"].text_zh
    assert definitions["travel_share"][6] == DEFINITION_BY_CODE["travel_share"].text_en
    # Recipients appear by id only: neither their names nor their ID numbers are in the workbook.
    text = every_text(book)
    assert not re.search(r"对象\d", text) and not ID_NUMBER.search(text)


def test_a_frozen_report_downloads_as_it_was_issued_with_its_hash(app, client, two_organisations):
    data = two_organisations
    with app.app_context():
        frozen = evaluation.freeze_contract_month(COMMAND_LINE, data["contract"], data["month"],
                                                  accept_open_exceptions=True)
        frozen_id, content_hash, count = frozen.id, frozen.content_hash, frozen.record_count
    assert count > 0
    response = client.get(f"/api/v1/reports/frozen/{frozen_id}/export", headers=data["auditor"],
                          query_string={"format": "xlsx"})
    assert response.status_code == 200 and response.mimetype == exports.MIMETYPES["xlsx"]
    assert response.headers["Content-Disposition"] == \
        f'attachment; filename="servicehub-frozen-report-{frozen_id}.xlsx"'
    book = workbook(response.data)
    facts = summary_facts(book)
    assert facts["冻结报告 Frozen report"] == f"#{frozen_id}" and facts["内容哈希 Content hash (SHA-256)"] == content_hash
    assert len(records_of(book)) == count and "按所选分组 As requested" not in book.sheetnames


def poppler(tool: str, *args: str) -> str:
    """The output of a poppler-utils tool (pdftotext, pdffonts …); skipped without them (a failure in CI)."""
    if shutil.which(tool) is None:
        unavailable(f"{tool} is not installed (apt-get install -y poppler-utils)", truthy("CI"))
    return subprocess.run([tool, *args], capture_output=True, text=True, check=True, timeout=60).stdout


def squeezed(text: str) -> str:
    """The text without any whitespace (pdftotext breaks lines where the PDF does)."""
    return "".join(text.split())


def test_the_pdf_has_chinese_text_in_an_embedded_font_charts_tables_and_the_definitions(client, two_organisations,
                                                                                       tmp_path):
    data = two_organisations
    content = download(client, data, "auditor", "pdf")
    report = json_report(client, data, "auditor")
    assert content.startswith(b"%PDF")
    path = tmp_path / "report.pdf"
    path.write_bytes(content)

    fonts = [line for line in poppler("pdffonts", str(path)).splitlines()[2:] if line.strip()]
    assert any(re.search(r"WenQuanYi|CJK", line) and " yes " in line for line in fonts), fonts
    text = poppler("pdftotext", "-layout", "-enc", "UTF-8", str(path), "-")
    flat, lines = squeezed(text), [squeezed(line) for line in text.splitlines()]
    # The cover: what, when, for whom, from how many records (counted, not listed: the XLSX lists them).
    first, last = period(data).values()
    assert squeezed(exports.REPORT_TITLE[0]) in flat and f"{first}至{last}" in flat and "全区District-wide" in flat
    drilled = client.get("/api/v1/reports/records", headers=data["auditor"], query_string=period(data)).get_json()
    assert f"服务记录Records{len(drilled['records']):,}" in flat and "已完成delivered" not in flat
    # Summary and tables in Chinese, with the organisations by name and the JSON's figures.
    assert f"服务人次Person-times{report['total']['person_times']:,}计数countperson_times" in lines
    assert all(squeezed(name) in flat for name in data["names"].values())
    assert f"¥{report['total']['delivered_value_fen'] / 100:,.2f}" in flat
    # The charts, drawn from the data (vector: their titles and bar values are text).
    for title in ("服务人次（按机构） Person-times by organisation", "交付金额（按机构，元）", "满意度分布",
                  "准时率（按机构）", "漏服务率（按机构）", "服务人次（按服务项目）"):
        assert squeezed(title) in flat, title
    # The definitions word for word, on the last pages; the footer on every page points there.
    spaced = " ".join(text.split())
    for code in ("corrected_rate", "person_times", "travel_share"):
        definition = DEFINITION_BY_CODE[code]
        assert squeezed(definition.text_zh) in flat and " ".join(definition.text_en.split()) in spaced
    pages = text.split("\f")[:-1]
    assert len(pages) >= 5 and squeezed(DEFINITION_BY_CODE["travel_share"].text_zh) in squeezed(pages[-1])
    for number, page in enumerate(pages, 1):
        assert "definitions on the last pages" in page and f"第{number}页/共{len(pages)}页" in squeezed(page)


def test_a_provider_downloads_only_its_own_organisation(client, two_organisations):
    data = two_organisations
    own, other = data["names"][data["own"]], data["names"][data["other"]]
    report = json_report(client, data, "provider")
    rows = csv_rows(download(client, data, "provider", "csv", group_by="organisation"))
    assert [row[0] for row in rows[1:]] == [own, "合计 total"]
    assert rows[-1][1 + FIGURES.index("person_times")] == str(report["total"]["person_times"])
    book = workbook(download(client, data, "provider", "xlsx"))
    assert summary_figures(book)["person_times"] == report["total"]["person_times"] > 0
    assert {row[2] for row in records_of(book)} == {own} and other not in every_text(book)
    assert summary_facts(book)["范围 Scope"] == f"机构 Organisation: {own}"
    refused = client.get("/api/v1/reports/kpis/export", headers=data["provider"],
                         query_string={**period(data), "format": "xlsx", "organisation_id": data["other"]})
    assert refused.status_code == 403


def test_figures_are_printed_with_their_units():
    shown = [exports.shown(value, unit) for value, unit in ((0.95123, "rate"), (1234567, "fen"), (12345, "count"),
                                                            (4.4213, "mean"), (1088.678, "hours"), (None, "rate"))]
    assert shown == ["95.1%", "¥12,345.67", "12,345", "4.42", "1,088.68", "—"]
    assert exports.grouping_in_words(["organisation", "month"]) == "按机构、月 by organisation, month"


def test_a_chart_of_many_organisations_shows_the_top_ones_and_says_so():
    groups = [{"key": {"organisation": k}, "figures": {"person_times": k, "delivered_value_fen": 100 * k,
                                                      "on_time_rate": k / 100, "missed_rate": None}}
              for k in range(1, 61)]
    by_organisation = {"group_by": ["organisation"], "groups": groups, "total": {}}
    labels = {"organisation": {str(k): {"zh": f"机构{k}", "en": f"Org {k}"} for k in range(1, 61)}}
    document = {"by": {"organisation": by_organisation}, "report": {"group_by": [], "groups": [], "total": {}}}
    drawn = {svg.split("<title>")[1].split("</title>")[0]: svg for svg in exports.pdf_charts(document, labels)}
    person_times = drawn["服务人次（按机构） Person-times by organisation（60 个中最高的 25 个 / top 25 of 60）"]
    assert person_times.count('class="bar"') == exports.MAX_BARS and "机构60" in person_times and "机构35" not in person_times
    on_time = drawn["准时率（按机构） On-time rate by organisation（60 个中最低的 25 个 / lowest 25 of 60）"]
    assert "机构1<" in on_time and "1.0%" in on_time and "机构60" not in on_time


def test_a_name_that_looks_like_a_formula_stays_text_in_csv_and_xlsx(app, client, two_organisations):
    data = two_organisations
    with app.app_context():
        db.session.get(Organisation, data["other"]).name_zh = '=HYPERLINK("http://evil.example","点我")'
        db.session.commit()
    rows = csv_rows(download(client, data, "auditor", "csv", group_by="organisation"))
    assert "'=HYPERLINK(\"http://evil.example\",\"点我\")" in [row[0] for row in rows]
    book = workbook(download(client, data, "auditor", "xlsx"))
    cells = [cell for sheet in book.worksheets for row in sheet.iter_rows() for cell in row]
    assert not any(cell.data_type == "f" for cell in cells)
    assert any(cell.value == "'=HYPERLINK(\"http://evil.example\",\"点我\")" for cell in cells)
    assert exports.no_formula("-1 组") == "'-1 组" and exports.no_formula("乐龄") == "乐龄"
