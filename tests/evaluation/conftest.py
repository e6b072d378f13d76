"""Evaluation fixtures: the scheduling ones, and `history` — five weeks of a provider's ledger."""

from datetime import timedelta

import pytest
from sqlalchemy import select

from servicehub.evaluation import services
from servicehub.extensions import db
from servicehub.registry.models import Contract
from servicehub.visits.history import write_demo_history
from tests.scheduling.fixtures import district_today, inline, served  # noqa: F401 - fixtures


@pytest.fixture
def history(app, served):  # noqa: F811 - the fixture above
    """The served provider's last five weeks as the ledger records them (written by the demo history writer):
    `served` plus the period's first and last day, the provider's contract and last month (YYYY-MM)."""
    with app.app_context():
        report = write_demo_history(years=0.1, seed=7, target=120)
        assert report.written, report.message
        contract_id = db.session.scalar(select(Contract.id).where(Contract.organisation_id == served["org"]))
    today = district_today()
    return {**served, "first": today - timedelta(days=36), "last": today - timedelta(days=1),
            "contract": contract_id, "month": services.previous_month(today)}
