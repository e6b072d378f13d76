"""Issue 19: a town manager reads no contract's frozen report, its exports or differences, and no settlement (a
contract's month as it is paid, not cut by town); the KPI report and its records are confined to the town."""

from sqlalchemy import func, select

from servicehub.auth.permissions import COMMAND_LINE
from servicehub.evaluation import services
from servicehub.evaluation.models import FrozenReport
from servicehub.extensions import db
from tests.registry import factories as f


def test_a_town_manager_reads_no_frozen_report_nor_settlement(app, client, history):
    with app.app_context():
        frozen = services.freeze_contract_month(COMMAND_LINE, history["contract"], history["month"],
                                                accept_open_exceptions=True).id
    town = history["manager.dagang"]
    assert client.get("/api/v1/reports/frozen", headers=town).get_json() == []
    for path, query in ((f"/api/v1/reports/frozen/{frozen}", {}), (f"/api/v1/reports/frozen/{frozen}/differences", {}),
                        *((f"/api/v1/reports/frozen/{frozen}/export", {"format": fmt}) for fmt in ("csv", "xlsx", "pdf"))):
        response = client.get(path, query_string=query, headers=town)
        assert response.status_code == 403, (path, response.status_code)
    for path in (f"/api/v1/contracts/{history['contract']}/settlement",
                 f"/api/v1/contracts/{history['contract']}/settlement/export"):
        response = client.get(path, query_string={"month": history["month"], "format": "csv"}, headers=town)
        assert response.status_code == 403, path
    # Pages too.
    assert client.get(f"/reports/frozen/{frozen}", headers=town).status_code == 403
    # The district manager, the auditor and the provider of the contract read them.
    for who in ("manager", "auditor", "provider"):
        assert client.get(f"/api/v1/reports/frozen/{frozen}/differences", headers=history[who]).status_code == 200


def test_a_town_manager_freezes_no_month(app, client, history):
    response = client.post("/api/v1/reports/frozen", json={"contract_id": history["contract"], "month": history["month"]},
                           headers=history["manager.dagang"])
    assert response.status_code == 403
    with app.app_context():
        assert db.session.scalar(select(func.count(FrozenReport.id))) == 0
    # The page offers the town manager no form to freeze with, and says where its town's figures are.
    page = client.get("/reports/frozen", headers=history["manager.dagang"]).get_data(as_text=True)
    assert 'data-testid="town-frozen-note"' in page and 'data-testid="freeze-form"' not in page
    page = client.get("/reports/frozen", headers=history["manager"]).get_data(as_text=True)
    assert 'data-testid="town-frozen-note"' not in page and 'data-testid="freeze-form"' in page


def test_a_town_managers_kpi_records_are_the_towns(app, client, history):
    with app.app_context():
        other_town = f.community(f.DINGMAO).parent_id
    town = history["manager.dagang"]
    period = {"from": history["first"].isoformat(), "to": history["last"].isoformat()}
    for path in ("/api/v1/reports/records", "/api/v1/reports/kpis", "/api/v1/reports/kpis/export"):
        response = client.get(path, query_string={**period, "town_id": other_town, "format": "csv"}, headers=town)
        assert response.status_code == 403, path
        assert "town_id" in response.get_json()["errors"]
    records = client.get("/api/v1/reports/records", query_string=period, headers=town).get_json()["records"]
    assert records and {r["town"] for r in records} == {records[0]["town"]}
