"""The database's sums (blocks summed in SQL from the deliveries in force) give exactly the figures of the pure
reference (`kpis.kpi_report` over one fact per visit), for every grouping and filter, on both engines, before
and after corrections; and the deliveries in force always equal a rebuild from the ledger."""

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select

from servicehub.auth.permissions import Principal, Role
from servicehub.catalog.models import AssistanceClass
from servicehub.evaluation import kpis, services
from servicehub.extensions import db
from servicehub.registry.models import Contract, Recipient
from servicehub.scheduling.models import Visit
from servicehub.visits import services as records
from servicehub.visits.deliveries import rebuild_deliveries
from servicehub.visits.models import RecordKind, ServiceRecord

GROUPINGS = [(), *((d,) for d in kpis.DIMENSIONS), ("organisation", "week"), ("service_type", "month"),
             ("worker", "day"), ("contract", "quarter"), ("town", "year"), ("recipient_class", "organisation", "month"),
             ("recipient", "worker", "week")]


def both_ways(query: services.ReportQuery) -> tuple[dict, dict]:
    """The report summed by the database, and the reference over the visit facts."""
    summed = services.compute(query).as_dict()
    reference = services.compute(query, services.load_visit_facts(query)).as_dict()
    return summed, reference


@pytest.mark.parametrize("names", GROUPINGS, ids=lambda names: "+".join(names) or "total")
def test_the_database_sums_give_the_reference_figures(app, history, names):
    with app.test_request_context():
        query = services.ReportQuery(history["first"], history["last"], names)
        summed, reference = both_ways(query)
    assert reference["total"]["person_times"] > 50
    assert summed == reference


@pytest.mark.parametrize("filters", [{"contract_id": "contract"}, {"worker_id": "worker"}, {"town_id": "town"},
                                     {"service_type": "LC02"}, {"category": "LC"}, {"recipient_class": "class"},
                                     {"organisation_id": "org"}, {"recipient_id": "recipient"}])
def test_filters_select_the_same_visits_both_ways(app, history, filters):
    with app.test_request_context():
        some = db.session.execute(select(ServiceRecord.worker_id, ServiceRecord.recipient_id)
                                  .where(ServiceRecord.kind == RecordKind.DELIVERY).limit(1)).one()
        recipient = db.session.get(Recipient, some.recipient_id)
        values = {"contract": history["contract"], "worker": some.worker_id, "town": recipient.town_id,
                  "org": history["org"], "recipient": recipient.id,
                  "class": db.session.get(AssistanceClass, recipient.assistance_class_id).code}
        filters = {name: values.get(value, value) for name, value in filters.items()}
        query = services.ReportQuery(history["first"], history["last"], ("service_type", "week"), filters)
        summed, reference = both_ways(query)
    assert reference["total"]["person_times"] > 0
    assert summed == reference


def test_recipients_and_referrals_read_all_at_once_give_the_same_figures(app, history, monkeypatch):
    monkeypatch.setattr(services, "IDS_LISTED", 0)  # a district's worth of them: read them all
    with app.test_request_context():
        summed, reference = both_ways(services.ReportQuery(history["first"], history["last"], ("town", "recipient_class")))
    assert reference["total"]["person_times"] > 50
    assert summed == reference


@pytest.mark.parametrize("names", [(), ("contract",), ("organisation", "week"), ("service_type", "day"),
                                   ("contract", "month")], ids=lambda names: "+".join(names) or "total")
def test_contracts_starting_and_ending_within_the_period_count_only_while_in_force(app, history, names):
    with app.test_request_context():
        whole = services.compute(services.ReportQuery(history["first"], history["last"])).total
        served = db.session.get(Contract, history["contract"])
        served.end_date = history["first"] + timedelta(days=12)
        for other in db.session.scalars(select(Contract).where(Contract.id != served.id)):
            other.start_date = history["first"] + timedelta(days=20)
        db.session.commit()
        reports = [both_ways(services.ReportQuery(history["first"], history["last"], names, filters))
                   for filters in ({}, {"contract_id": served.id})]
    for summed, reference in reports:
        assert summed == reference
    everything, one_contract = (reference["total"] for _, reference in reports)
    assert everything["person_times"] == whole["person_times"]  # still delivered, but not all under contract
    assert 0 < everything["delivered_value_fen"] < whole["delivered_value_fen"]
    assert 0 < one_contract["person_times"] < whole["person_times"]


def test_corrections_and_approvals_reach_the_sums_at_once(app, history):
    with app.test_request_context():
        deliveries = db.session.scalars(select(ServiceRecord).where(ServiceRecord.kind == RecordKind.DELIVERY)
                                        .order_by(ServiceRecord.id).limit(3)).all()
        provider = Principal(user_id=None, username="p", role=Role.PROVIDER_ADMIN, organisation_id=history["org"])
        query = services.ReportQuery(history["first"], history["last"], ("worker",))
        before = services.compute(query).total
        # a provider admin's change of times counts at once; a caregiver's waits for approval
        records.correct(provider, deliveries[0].id, str(uuid.uuid4()), {
            "reason_code": "wrong_time", "notes": "晚到一小时", "started_at": deliveries[0].started_at + timedelta(hours=1),
            "ended_at": deliveries[0].ended_at + timedelta(hours=1)})
        records.correct(provider, deliveries[1].id, str(uuid.uuid4()),
                        {"reason_code": "data_entry", "notes": "服务备注补录"})
        caregiver = Principal(user_id=None, username="c", role=Role.CAREGIVER, organisation_id=history["org"],
                              worker_id=deliveries[2].worker_id)
        waiting = records.correct(caregiver, deliveries[2].id, str(uuid.uuid4()), {
            "reason_code": "wrong_time", "notes": "忘记签出", "ended_at": deliveries[2].ended_at - timedelta(minutes=20)})
        pending = services.compute(query)
        assert pending.total["corrected_rate"] > (before["corrected_rate"] or 0)
        records.approve(provider, waiting.id, str(uuid.uuid4()))
        summed, reference = both_ways(query)
        in_force = db.session.get(Visit, deliveries[2].visit_id, populate_existing=True)
        assert in_force.delivery_record_id == waiting.id and in_force.delivery_corrected
    assert summed == reference
    assert summed["total"]["service_hours"] != before["service_hours"]
    assert summed["total"]["person_times"] == before["person_times"]


def test_the_deliveries_in_force_equal_a_rebuild_from_the_ledger(app, history):
    def snapshot():
        return {v.id: (v.delivery_record_id, v.delivery_late_s, v.delivery_service_s, v.delivery_submit_s,
                       v.delivery_satisfaction, v.delivery_exception, v.delivery_corrected)
                for v in db.session.execute(select(Visit).where(Visit.delivery_record_id.is_not(None)).execution_options(
                    populate_existing=True)).scalars()}

    with app.test_request_context():
        delivery = db.session.scalars(select(ServiceRecord).where(ServiceRecord.kind == RecordKind.DELIVERY)).first()
        provider = Principal(user_id=None, username="p", role=Role.PROVIDER_ADMIN, organisation_id=history["org"])
        correction = records.correct(provider, delivery.id, str(uuid.uuid4()), {
            "reason_code": "wrong_time", "notes": "更正", "ended_at": delivery.ended_at - timedelta(minutes=5)})
        kept = snapshot()
        delivered = set(db.session.scalars(select(ServiceRecord.visit_id)
                                           .where(ServiceRecord.kind == RecordKind.DELIVERY)))
        assert set(kept) == delivered and kept[delivery.visit_id][0] == correction.id
        assert rebuild_deliveries(db.session) == len(delivered)
        db.session.commit()
        assert snapshot() == kept


def test_rebuilding_from_the_command_line(app, runner, history):
    result = runner.invoke(args=["audit", "rebuild-deliveries"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        count = len(db.session.scalars(select(Visit.id).where(Visit.delivery_record_id.is_not(None))).all())
    assert f"{count} delivered visits" in result.output and count > 50


@pytest.mark.parametrize("names", [("organisation",), ("service_type", "week")], ids=lambda n: "+".join(n))
def test_a_document_without_records_sums_once_and_reads_the_same(app, history, names):
    with app.test_request_context():
        query = services.ReportQuery(history["first"], history["last"], names)
        summed = services.build_document(query, with_records=False)
        reference = services.build_document(query, with_records=True)
    assert summed["report"] == reference["report"] and summed["by"] == reference["by"]
    assert summed["record_count"] == reference["record_count"] == len(reference["records"])
