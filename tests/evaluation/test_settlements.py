"""Monthly settlements over a real ledger (the demo history's last month, its exceptions worked as the history
writer works them): the settlement equals the verified records summed by hand straight from the tables, per visit
and per verified minute; a month with undecided exceptions is not frozen without saying so (409, nothing written);
a frozen settlement stays as it was while the comparison shows what changed; who may read which settlement; the
downloads agree with the JSON."""

import csv
import io
import re
from collections import defaultdict
from decimal import ROUND_HALF_UP, Decimal

import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select

from servicehub.auth.models import AuditLog
from servicehub.auth.permissions import COMMAND_LINE, Principal, Role
from servicehub.catalog.models import ServiceType
from servicehub.evaluation import exports, services
from servicehub.evaluation.models import FrozenReport
from servicehub.extensions import db
from servicehub.matching.models import Referral
from servicehub.registry import services as registry
from servicehub.registry.models import Contract, ContractFunding, ContractLine
from servicehub.scheduling.models import Visit
from servicehub.visits import queue
from servicehub.visits.models import EvvException
from tests.registry import factories as f

PAID = {"approved", "waived", "cleared"}  # statuses that no longer stand between a visit and its payment
ONE = Decimal(1)


def half_up(value: Decimal) -> int:
    return int(value.quantize(ONE, rounding=ROUND_HALF_UP))


def by_hand(contract_id: int, month: str) -> dict:
    """The month's settlement summed straight from the tables: the contract's completed visits with a delivery in
    force, their exceptions' statuses and their line's terms; decimal arithmetic, rounded half up."""
    first, last = services.month_of(month)
    rows = db.session.execute(
        select(Visit.id, Visit.delivery_service_s, Visit.duration_min, ContractLine.id, ContractLine.unit_price_fen,
               ContractLine.billing, ContractLine.billing_step_min, ServiceType.unit)
        .join(Referral, Referral.id == Visit.referral_id)
        .join(ContractLine, ContractLine.id == Referral.contract_line_id)
        .join(ServiceType, ServiceType.id == Visit.service_type_id)
        .where(Referral.contract_id == contract_id, Visit.service_date.between(first, last),
               Visit.status == "completed", Visit.delivery_record_id.is_not(None))).all()
    statuses = defaultdict(set)
    for visit_id, status in db.session.execute(select(EvvException.visit_id, EvvException.status)
                                               .where(EvvException.visit_id.in_([r[0] for r in rows]))):
        statuses[visit_id].add(status)
    total, verified, unverified, unverified_fen = 0, 0, set(), 0
    amounts = defaultdict(int)
    for visit_id, served_s, planned, line_id, price, billing, step, unit in rows:
        if billing == "minute":
            minutes = half_up(Decimal(served_s) / 60 / step) * step
            amount = half_up(Decimal(minutes) * price / (60 if unit == "hour" else planned))
        else:
            amount = price * (-(-planned // 60) if unit == "hour" else 1)
        if statuses[visit_id] <= PAID:
            verified += 1
            total += amount
            amounts[line_id] += amount
        else:
            unverified.add(visit_id)
            unverified_fen += amount
    return {"total_fen": total, "verified": verified, "unverified": unverified, "unverified_fen": unverified_fen,
            "delivered": len(rows), "by_line": dict(amounts)}


def settlement_of(client, who, data, month=None, contract=None):
    return client.get(f"/api/v1/contracts/{contract or data['contract']}/settlement", headers=data[who],
                      query_string={"month": month or data["month"]})


def lc02_line(contract_id: int) -> int:
    return db.session.scalar(select(ContractLine.id).join(ServiceType).where(
        ContractLine.contract_id == contract_id, ServiceType.code == "LC02"))


@pytest.mark.parametrize("billing", [{"billing": "visit"}, {"billing": "minute", "billing_step_min": 15},
                                     {"billing": "minute", "billing_step_min": 1, "min_billable_share": 0.8}],
                         ids=["per-visit", "per-15-minutes", "per-minute"])
def test_the_settlement_equals_the_verified_records_summed_by_hand(app, client, history, billing):
    with app.app_context():
        registry.update_line_billing(COMMAND_LINE, history["contract"], lc02_line(history["contract"]), billing)
        expected = by_hand(history["contract"], history["month"])
        contract = db.session.get(Contract, history["contract"])
        loaded = services.load_settlement(contract, *services.month_of(history["month"]))
    assert expected["verified"] > 20 and expected["unverified"], "the month needs paid and unpaid visits"
    assert loaded.total_fen == expected["total_fen"]
    assert {line.terms.line_id: line.amount_fen for line in loaded.lines if line.delivered} == expected["by_line"]
    assert sum(line.verified for line in loaded.lines) == expected["verified"]
    assert {row["visit_id"] for row in loaded.unsettled} == expected["unverified"]
    assert sum(line.unverified_fen for line in loaded.lines) == expected["unverified_fen"]

    response = settlement_of(client, "auditor", history)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["frozen"] is False and body["current"] is None and body["differences"] == []
    shown = body["settlement"]
    assert shown["total_fen"] == expected["total_fen"] and shown["delivered"] == expected["delivered"]
    assert sum(p["amount_fen"] for p in shown["by_funding"]) == expected["total_fen"]
    assert [p["source"] for p in shown["by_funding"]] == ["government", "charity"]
    assert abs(Decimal(shown["by_funding"][0]["amount_fen"]) - Decimal(expected["total_fen"]) * 8 / 10) < 1
    line = next(li for li in shown["lines"] if li["service_type"] == "LC02")
    assert line["billing"] == billing["billing"] and line["step_min"] == billing.get("billing_step_min", 15)
    assert body["undecided"] > 0
    visit_id = shown["unsettled"][0]["visit_id"]
    assert set(body["exception_ids"][str(visit_id)]) >= {e["code"] for e in shown["unsettled"][0]["exceptions"]}
    assert str(shown["unsettled"][0]["recipient"]) in body["names"]["recipients"]
    assert body["names"]["service_types"]["LC02"]["zh"]


def test_the_split_by_funding_source_adds_up_to_the_total_for_awkward_amounts(app, client, history):
    with app.app_context():
        contract = db.session.get(Contract, history["contract"])
        contract.fundings = [ContractFunding(source="government", funder="区民政局", amount_fen=3_333_333),
                             ContractFunding(source="charity", funder="慈善总会", amount_fen=3_333_333),
                             ContractFunding(source="organisation", funder="", amount_fen=3_333_334)]
        db.session.commit()
    shown = settlement_of(client, "manager", history).get_json()["settlement"]
    parts = [p["amount_fen"] for p in shown["by_funding"]]
    assert sum(parts) == shown["total_fen"] and max(parts) - min(parts) <= 1


# --- freezing ------------------------------------------------------------------------------------------------


def answer_every_exception(app, history, visit_id: int) -> None:
    """The provider explains each undecided exception of the visit and the bureau approves it."""
    provider = Principal(user_id=None, username="p", role=Role.PROVIDER_ADMIN, organisation_id=history["org"])
    bureau = Principal(user_id=None, username="区民政局", role=Role.MANAGER)
    with app.test_request_context():
        for exception in db.session.scalars(select(EvvException).where(
                EvvException.visit_id == visit_id, EvvException.status.in_(("open", "resolved", "rejected")))).all():
            if exception.status != "resolved":
                queue.resolve(provider, exception.id, "schedule_agreed", "已电话回访核实")
            queue.decide(bureau, exception.id, True)


def frozen_rows(app) -> tuple[int, int]:
    with app.app_context():
        return (db.session.scalar(select(func.count(FrozenReport.id))),
                db.session.scalar(select(func.count(AuditLog.id)).where(AuditLog.action == "report_frozen")))


def test_a_month_with_undecided_exceptions_is_frozen_only_when_the_caller_says_so(app, client, history):
    before = settlement_of(client, "manager", history).get_json()
    undecided = before["undecided"]
    assert undecided > 0
    body = {"contract_id": history["contract"], "month": history["month"]}
    refused = client.post("/api/v1/reports/frozen", json=body, headers=history["manager"])
    assert refused.status_code == 409
    problem = refused.get_json()
    assert problem["code"] == "open_exceptions" and "accept_open_exceptions" in problem["errors"]
    assert str(undecided) in problem["message"]
    assert frozen_rows(app) == (0, 0)  # nothing written
    refused_too = client.post("/api/v1/reports/frozen", json={**body, "accept_open_exceptions": False},
                              headers=history["manager"])
    assert refused_too.status_code == 409 and frozen_rows(app) == (0, 0)

    created = client.post("/api/v1/reports/frozen", json={**body, "accept_open_exceptions": True},
                          headers=history["manager"])
    assert created.status_code == 201, created.get_json()
    frozen = created.get_json()
    assert frozen["open_exceptions"] == undecided
    assert frozen["settlement"]["total_fen"] == before["settlement"]["total_fen"]
    assert frozen_rows(app) == (1, 1)

    kept = settlement_of(client, "auditor", history).get_json()
    assert kept["frozen"] is True and kept["frozen_id"] == frozen["id"] and kept["frozen_open_exceptions"] == undecided
    assert kept["settlement"] == before["settlement"] and kept["differences"] == []

    # the bureau approves one unpaid visit's exceptions after the month was frozen
    unpaid = next(row for row in kept["settlement"]["unsettled"]
                  if all(e["code"] != "frozen_month_correction" for e in row["exceptions"]))
    answer_every_exception(app, history, unpaid["visit_id"])
    after = settlement_of(client, "auditor", history).get_json()
    assert after["settlement"] == before["settlement"]  # the frozen settlement does not move
    assert after["current"]["total_fen"] == before["settlement"]["total_fen"] + unpaid["amount_fen"]
    assert {"visit_id": unpaid["visit_id"], "figure": "verified", "frozen": False, "now": True} in after["differences"]
    total = next(d for d in after["differences"] if d["figure"] == "total_fen")
    assert (total["frozen"], total["now"]) == (before["settlement"]["total_fen"], after["current"]["total_fen"])
    compared = client.get(f"/api/v1/reports/frozen/{frozen['id']}/differences", headers=history["auditor"]).get_json()
    assert compared["settlement"] == after["differences"]
    assert client.get(f"/api/v1/reports/frozen/{frozen['id']}", headers=history["auditor"]).get_json()[
        "settlement"] == before["settlement"]


def test_a_correction_of_a_frozen_month_waits_for_the_bureau_and_is_listed(app, client, history):
    with app.app_context():
        services.freeze_contract_month(COMMAND_LINE, history["contract"], history["month"], accept_open_exceptions=True)
    from tests.evaluation.test_reports_api import late_correction

    visit_id = late_correction(app, history, approve=False)
    waiting = settlement_of(client, "auditor", history).get_json()
    assert [(p["visit_id"], p["status"]) for p in waiting["pending_corrections"]] == [(visit_id, "resolved")]
    frozen_id = waiting["frozen_id"]
    compared = client.get(f"/api/v1/reports/frozen/{frozen_id}/differences", headers=history["auditor"]).get_json()
    assert compared["pending_corrections"] == waiting["pending_corrections"]
    assert compared["pending_corrections"][0]["correction_id"]


def test_the_command_line_freezes_with_open_exceptions_only_when_told(app, runner, history):
    args = ["reports", "freeze", "--contract-id", str(history["contract"]), "--month", history["month"]]
    refused = runner.invoke(args=args)
    assert refused.exit_code == 1 and "accept_open_exceptions" in refused.output
    assert frozen_rows(app)[0] == 0
    done = runner.invoke(args=[*args, "--accept-open-exceptions"])
    assert done.exit_code == 0, done.output
    assert "frozen report" in done.output and "exceptions undecided" in done.output
    assert frozen_rows(app)[0] == 1


# --- who may read which settlement, bad input -------------------------------------------------------------------


def test_who_may_read_which_settlement(app, client, history):
    with app.app_context():
        other = f.contract(f.organisation_ids()[1], areas=[f.DINGMAO]).id
    for who in ("auditor", "manager", "admin", "provider"):
        assert settlement_of(client, who, history).status_code == 200, who
    # A contract's month as it is paid is not cut by town (issue 19): a town manager reads the town's share in
    # the KPI report instead.
    assert settlement_of(client, "manager.dagang", history).status_code == 403
    assert settlement_of(client, "manager", history, contract=other).status_code == 200
    assert settlement_of(client, "provider", history, contract=other).status_code == 404  # not its own
    assert settlement_of(client, "caregiver", history).status_code == 403
    assert settlement_of(client, "auditor", history, contract=999_999).status_code == 404
    export = client.get(f"/api/v1/contracts/{other}/settlement/export", headers=history["provider"],
                        query_string={"month": history["month"], "format": "csv"})
    assert export.status_code == 404


@pytest.mark.parametrize("month", ["2026-13", "2026-1", "november", "1999-01", "2099-01"])
def test_a_bad_month_or_one_outside_the_contract_is_422_naming_month(client, history, month):
    response = settlement_of(client, "auditor", history, month=month)
    assert response.status_code == 422, response.get_json()
    assert "month" in response.get_json()["errors"]
    missing = client.get(f"/api/v1/contracts/{history['contract']}/settlement", headers=history["auditor"])
    assert missing.status_code == 422 and "month" in missing.get_json()["errors"]


# --- downloads ----------------------------------------------------------------------------------------------------


def download(client, history, fmt: str) -> bytes:
    response = client.get(f"/api/v1/contracts/{history['contract']}/settlement/export", headers=history["auditor"],
                          query_string={"month": history["month"], "format": fmt})
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    assert response.mimetype == exports.MIMETYPES[fmt]
    code = client.get(f"/api/v1/contracts/{history['contract']}", headers=history["auditor"]).get_json()["code"]
    assert response.headers["Content-Disposition"] == \
        f'attachment; filename="servicehub-settlement-{code}-{history["month"]}.{fmt}"'
    return response.data


def sections(content: bytes) -> list[list[list[str]]]:
    """The CSV's sections (separated by empty rows)."""
    assert content.startswith("\ufeff".encode())
    parts, current = [], []
    for row in csv.reader(io.StringIO(content.decode("utf-8-sig"))):
        if not row:
            parts.append(current)
            current = []
        else:
            current.append(row)
    return [*parts, current]


def yuan(fen: int) -> str:
    return f"{fen // 100}.{fen % 100:02d}"


def test_the_csv_and_xlsx_show_the_json_in_yuan(client, history):
    body = settlement_of(client, "auditor", history).get_json()
    shown = body["settlement"]
    facts, lines, funding, unsettled = sections(download(client, history, "csv"))
    assert dict(row[:2] for row in facts[1:])["结算月份 Month"] == history["month"]
    header, *rows = lines
    assert header[0] == "服务项目 Service type" and "应付金额（元） Amount (¥)" in header
    amount_at = header.index("应付金额（元） Amount (¥)")
    by_code = {row[0]: row for row in rows}
    for line in shown["lines"]:
        row = by_code[line["service_type"]]
        assert row[amount_at] == yuan(line["amount_fen"])
        assert int(row[header.index("已核验 Verified")]) == line["verified"]
    assert by_code["合计 Total"][amount_at] == yuan(shown["total_fen"])
    assert by_code["大写 In words"][1] == f"人民币{exports.fen_in_words(shown['total_fen'])}"
    assert [row[-1] for row in funding[1:]] == [yuan(p["amount_fen"]) for p in shown["by_funding"]]
    assert [int(row[1]) for row in unsettled[1:]] == [row["visit_id"] for row in shown["unsettled"]]
    assert all(row[-1] for row in unsettled[1:])  # every unpaid visit says which exceptions stand in its way

    book = load_workbook(io.BytesIO(download(client, history, "xlsx")))
    assert book.sheetnames == ["结算 Settlement", "未结算服务 Not paid yet"]
    cells = list(book["结算 Settlement"].iter_rows(values_only=True))
    total = next(row for row in cells if row[0] == "合计 Total")
    assert total[11] == pytest.approx(shown["total_fen"] / 100) and total[8] == shown["verified"]
    listed = list(book["未结算服务 Not paid yet"].iter_rows(min_row=2, values_only=True))
    assert [row[1] for row in listed] == [row["visit_id"] for row in shown["unsettled"]]
    assert sum(round(row[6] * 100) for row in listed) == shown["unverified_fen"]


def test_a_frozen_month_downloads_its_frozen_settlement_with_what_changed(app, client, history):
    with app.app_context():
        services.freeze_contract_month(COMMAND_LINE, history["contract"], history["month"], accept_open_exceptions=True)
    frozen = settlement_of(client, "auditor", history).get_json()
    answer_every_exception(app, history, frozen["settlement"]["unsettled"][0]["visit_id"])
    book = load_workbook(io.BytesIO(download(client, history, "xlsx")))
    assert book.sheetnames == ["结算 Settlement", "未结算服务 Not paid yet", "冻结后变化 Since frozen"]
    total = next(row for row in book["结算 Settlement"].iter_rows(values_only=True) if row[0] == "合计 Total")
    assert total[11] == pytest.approx(frozen["settlement"]["total_fen"] / 100)  # as frozen
    changes = list(book["冻结后变化 Since frozen"].iter_rows(min_row=2, values_only=True))
    assert any(row[1] == frozen["settlement"]["unsettled"][0]["visit_id"] for row in changes)


def test_the_pdf_is_a_settlement_sheet_with_the_total_in_capitals(client, history, tmp_path):
    from tests.evaluation.test_exports import poppler, squeezed

    content = download(client, history, "pdf")
    assert content.startswith(b"%PDF")
    path = tmp_path / "settlement.pdf"
    path.write_bytes(content)
    fonts = [line for line in poppler("pdffonts", str(path)).splitlines()[2:] if line.strip()]
    assert any(re.search(r"WenQuanYi|CJK", line) and " yes " in line for line in fonts), fonts
    shown = settlement_of(client, "auditor", history).get_json()["settlement"]
    flat = squeezed(poppler("pdftotext", "-layout", "-enc", "UTF-8", str(path), "-"))
    assert squeezed(exports.SETTLEMENT_TITLE[0]) in flat and history["month"] in flat
    assert f"人民币{exports.fen_in_words(shown['total_fen'])}" in flat
    assert f"¥{shown['total_fen'] / 100:,.2f}" in flat
    assert f"暂不结算的服务Visitsnotpaidyet({len(shown['unsettled'])})" in flat
    assert "实时·未冻结" in flat


def test_exception_counts_by_code_for_a_period(app, history):
    first, last = services.month_of(history["month"])
    with app.app_context():
        rows = services.exception_counts(COMMAND_LINE, first, last, organisation_id=history["org"])
        raw = dict(db.session.execute(select(EvvException.code, func.count()).where(
            EvvException.service_date.between(first, last), EvvException.organisation_id == history["org"],
            EvvException.status != "cleared").group_by(EvvException.code)).all())
        provider = Principal(user_id=None, username="p", role=Role.PROVIDER_ADMIN, organisation_id=history["org"])
        assert services.exception_counts(provider, first, last) == rows
        with pytest.raises(services.PermissionDenied):
            services.exception_counts(provider, first, last, organisation_id=history["org"] + 1)
    assert {row["code"]: row["standing"] for row in rows} == raw
    assert all(row["standing"] == row["undecided"] + row["rejected"] + row["approved"] for row in rows)
