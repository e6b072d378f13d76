"""Who sees and changes what in the registry: query filters and checks derived from the caller.

Scoping lives here, in the query layer, so that no page or endpoint can forget it: a provider sees
only its own organisation's contracts and workers and the recipients referred to it; a town manager
only recipients of that town; ID numbers are shown in full only to admins and the managers of the
recipient's town.
"""

from __future__ import annotations

from sqlalchemy import false, select, true
from sqlalchemy.sql import ColumnElement

from servicehub.auth.permissions import Principal, Role
from servicehub.errors import N_, PermissionDenied
from servicehub.matching.models import Referral, ReferralStatus
from servicehub.registry.models import Contract, Need, Organisation, Recipient, Worker


def organisation_filter(principal: Principal, column) -> ColumnElement[bool]:
    """Rows of `column` (an organisation id) the caller may see."""
    if principal.is_provider:
        return column == principal.organisation_id
    return true()


def organisations_visible(principal: Principal) -> ColumnElement[bool]:
    """Organisations the caller may see."""
    return organisation_filter(principal, Organisation.id)


def contracts_visible(principal: Principal) -> ColumnElement[bool]:
    """Contracts the caller may see."""
    return organisation_filter(principal, Contract.organisation_id)


def workers_visible(principal: Principal) -> ColumnElement[bool]:
    """Workers the caller may see."""
    return organisation_filter(principal, Worker.organisation_id)


def recipients_visible(principal: Principal) -> ColumnElement[bool]:
    """Recipients the caller may see: town managers their town; providers those referred to them."""
    if principal.role in (Role.ADMIN, Role.AUDITOR):
        return true()
    if principal.role == Role.MANAGER:
        return true() if principal.town_id is None else Recipient.town_id == principal.town_id
    if principal.role == Role.PROVIDER_ADMIN:
        return referred_to(principal.organisation_id)
    return false()


def referred_to(organisation_id: int | None) -> ColumnElement[bool]:
    """Recipients with a referral offered to, accepted or being served by the organisation."""
    shown = (ReferralStatus.OFFERED, ReferralStatus.ACCEPTED, ReferralStatus.ACTIVE, ReferralStatus.SUSPENDED)
    return Recipient.id.in_(
        select(Need.recipient_id)
        .join(Referral, Referral.need_id == Need.id)
        .where(Referral.organisation_id == organisation_id, Referral.status.in_(shown))
    )


def may_see_id_number(principal: Principal, recipient: Recipient) -> bool:
    """Full ID numbers: admins, and managers of the recipient's town (a district manager manages every town)."""
    if principal.role == Role.ADMIN:
        return True
    return principal.role == Role.MANAGER and principal.town_id in (None, recipient.town_id)


def require_district_level(principal: Principal) -> None:
    """Areas, stations, organisations and contracts are the district's business."""
    if not (principal.role == Role.ADMIN or (principal.role == Role.MANAGER and principal.town_id is None)):
        raise PermissionDenied(N_("Only district-level managers and admins change areas, stations, organisations and contracts."))


def require_town(principal: Principal, town_id: int) -> None:
    """A town manager registers recipients and needs only in their own town."""
    if principal.role == Role.MANAGER and principal.town_id not in (None, town_id):
        raise PermissionDenied(N_("You manage another town; this recipient is not in it."))


def require_organisation(principal: Principal, organisation_id: int) -> None:
    """A provider changes only its own organisation's workers."""
    if principal.is_provider and principal.organisation_id != organisation_id:
        raise PermissionDenied(N_("You can only manage your own organisation's workers."))
