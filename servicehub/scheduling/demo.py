"""The demo district in service: every need matched, offered, accepted and active, and visits generated.

Run once after `servicehub seed demo` (`servicehub demo serve`), so that a provider admin finds
referrals to schedule on the first visit. Idempotent: needs already referred are left alone.
"""

from __future__ import annotations

from sqlalchemy import select

from servicehub.auth.permissions import COMMAND_LINE, Principal, Role
from servicehub.extensions import db
from servicehub.matching import services as matching
from servicehub.matching.models import Referral, ReferralStatus
from servicehub.scheduling.services import GenerationReport, generate_visits


def serve_demo_district() -> tuple[int, GenerationReport]:
    """Match every open need, offer and accept the proposals as their organisations, generate visits."""
    matching.run_matching(COMMAND_LINE)
    proposals = db.session.scalars(select(Referral).where(Referral.status == ReferralStatus.PROPOSED)
                                   .order_by(Referral.id)).all()
    by_org: dict[int, list[int]] = {}
    for referral in proposals:
        by_org.setdefault(referral.organisation_id, []).append(referral.id)
    accepted = 0
    for organisation_id, referral_ids in sorted(by_org.items()):
        matching.offer_many(COMMAND_LINE, referral_ids)
        provider = Principal(user_id=None, username="demo", role=Role.PROVIDER_ADMIN, organisation_id=organisation_id)
        accepted += len(matching.act_many(provider, referral_ids, "accept"))  # one transaction per organisation
    matching.activate_due_referrals()
    return accepted, generate_visits(COMMAND_LINE)
