"""How a run stores what it found: new proposals in bulk, each with the audit row the audit hook would have
written; outcomes pointing at them; score breakdowns exactly as `Score.breakdown()` gives them. And the
batched nearest-base search of `evaluate` gives the very scores of scoring against every base."""

import random
from datetime import date

import pytest
from sqlalchemy import select

from servicehub.auth import audit
from servicehub.auth.audit import Actor, acting_as
from servicehub.auth.models import AuditLog
from servicehub.auth.permissions import COMMAND_LINE
from servicehub.extensions import db
from servicehub.matching import scoring, services
from servicehub.matching.models import MatchingOutcome, Referral
from servicehub.matching.problem import LineOption, NeedCase, OrganisationProfile
from servicehub.registry.models import Need
from servicehub.timeutil import district_today
from tests.registry import factories as f


@pytest.fixture
def market(app, demo):
    """Two organisations with cleaning (LC02) contracts; four recipients needing cleaning: their need ids."""
    with app.app_context():
        org_a, org_b = f.organisation_ids()[:2]
        for org in (org_a, org_b):
            f.worker(org)
        f.contract(org_a, lines=[{"service_type": "LC02", "unit_price_fen": 6000, "contracted_quantity": 500}])
        f.contract(org_b, lines=[{"service_type": "LC02", "unit_price_fen": 6500, "contracted_quantity": 500}])
        return [f.need(f.recipient(name=f"对象{i}").id).id for i in range(4)]


def audit_rows(referral_id: int) -> list[AuditLog]:
    return db.session.scalars(select(AuditLog).where(AuditLog.entity_type == "referrals",
                                                     AuditLog.entity_id == str(referral_id))
                              .order_by(AuditLog.id)).all()


def test_each_new_proposal_has_the_audit_row_the_hook_writes(app, market):
    with app.app_context(), acting_as(Actor("cli:test")):
        run = services.run_matching(COMMAND_LINE)
        proposals = db.session.scalars(select(Referral).where(Referral.run_id == run.id)).all()
        assert sorted(r.need_id for r in proposals) == sorted(market)
        for referral in proposals:
            (row,) = audit_rows(referral.id)
            assert (row.action, row.actor) == ("create", "cli:test")
            assert row.changes == audit._column_changes(referral, created=True)
        # A proposal made through the session (a manager's choice) is logged by the hook with the same fields.
        bulk = audit_rows(proposals[0].id)[0]
        chosen = services.propose(COMMAND_LINE, market[0], proposals[0].contract_line_id)
        (hooked,) = audit_rows(chosen.id)
        assert hooked.action == "create" and set(bulk.changes) == set(hooked.changes) | {"run_id"}


def test_outcomes_point_at_the_proposals_and_breakdowns_are_the_scores_own(app, market):
    with app.app_context(), acting_as(Actor("cli:test")):
        run = services.run_matching(COMMAND_LINE)
        today = district_today()
        cases = {c.need_id: c for c in services._need_cases(db.session.scalars(
            select(Need).where(Need.id.in_(market))).all())}
        lines = {line.line_id: line for line in services._line_options(today)}
        orgs = services._organisation_profiles(today)

        def expected(need_id, line_id):
            line = lines[line_id]
            return scoring.score_option(cases[need_id], line, orgs[line.organisation_id], services.weights())

        outcomes = db.session.scalars(select(MatchingOutcome).where(MatchingOutcome.run_id == run.id)).all()
        assert sorted(o.need_id for o in outcomes) == sorted(market)
        for outcome in outcomes:
            proposal = db.session.get(Referral, outcome.referral_id)
            assert proposal.need_id == outcome.need_id and proposal.run_id == run.id
            score = expected(outcome.need_id, proposal.contract_line_id)
            assert (proposal.score, proposal.score_breakdown) == (score.total, score.breakdown())
            assert outcome.alternatives, "the other organisation is the runner-up"
            for alternative in outcome.alternatives:
                assert alternative["breakdown"] == expected(outcome.need_id, alternative["line_id"]).breakdown()


def test_scores_against_the_nearest_bases_equal_scores_against_all_of_them():
    rng = random.Random(3)

    def point():
        return (round(32.05 + rng.random() * 0.3, 6), round(119.4 + rng.random() * 0.5, 6))

    stations = [point() for _ in range(6)]
    orgs = {}
    for org_id in (1, 2, 3):
        bases = [point() for _ in range(20)] + stations[:3] * 2  # workers starting at stations: duplicates
        orgs[org_id] = OrganisationProfile(org_id, f"org{org_id}", True, tuple(bases) if org_id != 3 else bases[:1],
                                           qualified_genders={None: frozenset({"female", "male"})}, load=0.5)
    lines = [LineOption(10 + org_id, org_id, f"C{org_id}", org_id, "LC02", 6000 + 500 * org_id, 6000,
                        date(2026, 1, 1), date(2026, 12, 31), True, frozenset({"321191"}), frozenset({"dibao"}), 1e6)
             for org_id in orgs]
    cases = [NeedCase(n, n, "LC02", "dibao", "321191001", "321191001001", stations[n % 6] if n < 6 else point(),
                      date(2026, 3, 1), None, 4.33) for n in range(300)]
    today, weights = date(2026, 6, 1), scoring.Weights()
    evaluation = services.evaluate(cases, lines, orgs, today, weights)
    for case in cases:
        options = evaluation.options[case.need_id]
        assert len(options) == 3
        for line, score, _ in options:
            full = scoring.score_option(case, line, orgs[line.organisation_id], weights)
            assert (score.total, score.breakdown()) == (full.total, full.breakdown())


def test_superseded_proposals_are_withdrawn_with_the_audit_row_the_hook_writes(app, market):
    with app.app_context(), acting_as(Actor("cli:test")):
        first = services.run_matching(COMMAND_LINE)
        second = services.run_matching(COMMAND_LINE)
        old = db.session.scalars(select(Referral).where(Referral.run_id == first.id)).all()
        assert len(old) == 4 and {r.status for r in old} == {"withdrawn"}
        for referral in old:
            assert referral.reason == f"superseded by matching run {second.id}"
            assert [(row.action, row.changes) for row in audit_rows(referral.id)][1:] == [
                ("update", {"status": ["proposed", "withdrawn"], "reason": ["", referral.reason]})]
        # A manager's withdrawal through the session is logged by the hook with the same fields.
        fresh = db.session.scalars(select(Referral).where(Referral.run_id == second.id)).first()
        services.act(COMMAND_LINE, fresh.id, "withdraw", reason="duplicate")
        hooked = [row for row in audit_rows(fresh.id) if row.action == "update"]
        assert [row.changes for row in hooked] == [{"status": ["proposed", "withdrawn"], "reason": ["", "duplicate"]}]
