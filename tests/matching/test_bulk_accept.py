"""Accepting many offers at once (`act_many`): only the organisation's own offers, each with the audit entries
`act` writes, and all or none."""

import pytest
from sqlalchemy import select

from servicehub.auth.audit import Actor, acting_as
from servicehub.auth.models import AuditLog
from servicehub.auth.permissions import COMMAND_LINE, Principal, Role
from servicehub.errors import Conflict, NotFound, PermissionDenied
from servicehub.extensions import db
from servicehub.matching import services
from servicehub.matching.models import Referral
from servicehub.registry.models import Need
from tests.registry import factories as f


def provider_of(organisation_id: int) -> Principal:
    """A provider admin of the organisation, as the services see one."""
    return Principal(user_id=None, username="provider", role=Role.PROVIDER_ADMIN, organisation_id=organisation_id)


@pytest.fixture
def offers(app, demo):
    """Six cleaning needs offered, four to one organisation and two to another: {organisation id: [referral ids]}."""
    with app.app_context(), acting_as(Actor("cli:test")):
        by_org: dict[int, list[int]] = {}
        lines = []
        for org in f.organisation_ids()[:2]:
            f.worker(org)
            contract = f.contract(org, lines=[{"service_type": "LC02", "unit_price_fen": 6000,
                                               "contracted_quantity": 500}])
            lines.append((org, contract.lines[0].id))
        for i in range(6):
            org, line = lines[0] if i < 4 else lines[1]
            need = f.need(f.recipient(name=f"对象{i}").id)
            by_org.setdefault(org, []).append(services.propose(COMMAND_LINE, need.id, line).id)
        services.offer_many(COMMAND_LINE, [i for ids in by_org.values() for i in ids])
        return by_org


def accept_events(referral_ids) -> list[AuditLog]:
    return db.session.scalars(select(AuditLog).where(AuditLog.entity_type == "referrals", AuditLog.action == "accept",
                                                     AuditLog.entity_id.in_([str(i) for i in referral_ids]))).all()


def statuses(referral_ids) -> list[str]:
    return [db.session.get(Referral, i).status for i in referral_ids]


def test_a_provider_accepts_its_offers_at_once_with_the_audit_entries_of_act(app, offers):
    (org, ids), (_, others) = sorted(offers.items())
    with app.app_context(), acting_as(Actor("provider")):
        accepted = services.act_many(provider_of(org), ids, "accept")
        assert [r.id for r in accepted] == ids
        db.session.expire_all()
        assert statuses(ids) == ["active"] * len(ids)  # the needs start today: accepted and active at once
        assert statuses(others) == ["offered"] * len(others)
        needs = [db.session.get(Referral, i).need_id for i in ids]
        assert [db.session.get(Need, n).status for n in needs] == ["active"] * len(ids)
        events = accept_events(ids)
        assert sorted(int(e.entity_id) for e in events) == ids
        assert {(e.actor, e.changes["status"], e.changes["organisation_id"]) for e in events} == {("provider", "active", org)}
        for referral_id in ids:  # the session hook logged each change of state, as for `act`
            updates = db.session.scalars(select(AuditLog).where(
                AuditLog.entity_type == "referrals", AuditLog.entity_id == str(referral_id),
                AuditLog.action == "update")).all()
            assert any(u.changes.get("status") == ["offered", "active"] for u in updates)


def test_one_refusal_and_nothing_is_accepted(app, offers):
    (org, ids), (other_org, others) = sorted(offers.items())
    with app.app_context(), acting_as(Actor("provider")):
        services.act(provider_of(org), ids[0], "accept")
        with pytest.raises(Conflict) as refused:  # already accepted: not an offer any more
            services.act_many(provider_of(org), ids, "accept")
        assert str(ids[0]) in refused.value.message and refused.value.errors["referral_ids"]
        with pytest.raises(NotFound) as unseen:  # another organisation's offer is not even visible to it
            services.act_many(provider_of(org), ids[1:] + others[:1], "accept")
        assert str(others[0]) in unseen.value.message
        with pytest.raises(PermissionDenied):  # a manager cannot accept for the organisation
            services.act_many(COMMAND_LINE, others, "accept")
        db.session.expire_all()
        assert statuses(ids[1:]) == ["offered"] * (len(ids) - 1)
        assert statuses(others) == ["offered"] * len(others)
        assert [int(e.entity_id) for e in accept_events(ids + others)] == [ids[0]]
        assert [r.status for r in services.act_many(provider_of(other_org), others, "accept")] == ["active"] * len(others)
