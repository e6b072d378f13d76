"""Who sees and changes what in the registry: query filters and checks derived from the caller.

Scoping lives here, in the query layer, so that no page or endpoint can forget it. How far each kind of caller
reaches is the table in `servicehub.auth.policy`; `visible` turns a row of it into a query condition, given the
columns that say whose a row is (its town, organisation, worker): a provider sees only its own organisation's
contracts and workers and the recipients referred to it; a town manager only recipients of that town; ID
numbers are shown in full only to admins and the managers of the recipient's town.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import false, select, true
from sqlalchemy.sql import ColumnElement

from servicehub.auth.permissions import Principal, Role
from servicehub.auth.policy import Action, Resource, Scope, allows, scope_of
from servicehub.errors import N_, PermissionDenied
from servicehub.matching.models import Referral, ReferralStatus
from servicehub.registry.models import Contract, Need, Organisation, Recipient, Worker

Owner = ColumnElement | Callable[[int], ColumnElement[bool]] | None


def visible(principal: Principal, resource: Resource, action: Action = Action.READ, *, town: Owner = None,
            organisation: Owner = None, worker: Owner = None) -> ColumnElement[bool]:
    """Rows of `resource` the caller may read (or change): whose rows are is told by a column of town,
    organisation or worker ids, or a function of the caller's id giving the condition (e.g. `in_town`)."""
    scope = scope_of(principal, resource, action)
    if scope is Scope.ALL:
        return true()
    owner, own = {Scope.TOWN: (town, principal.town_id), Scope.ORGANISATION: (organisation, principal.organisation_id),
                  Scope.WORKER: (worker, principal.worker_id)}.get(scope, (None, None))
    if scope is not Scope.NONE and owner is None:
        raise TypeError(f"{resource} is scoped by {scope} here, but no {scope} column was given")
    if owner is None or own is None:
        return false()
    return owner(own) if callable(owner) else owner == own


def in_town(recipient_id) -> Callable[[int], ColumnElement[bool]]:
    """The town of a row, told by its recipient: `recipient_id` (a column) is of a recipient of the town."""
    return lambda town_id: recipient_id.in_(select(Recipient.id).where(Recipient.town_id == town_id))


def organisation_filter(principal: Principal, column, resource: Resource = Resource.ORGANISATIONS) -> ColumnElement[bool]:
    """Rows of `column` (an organisation id) the caller may see."""
    return visible(principal, resource, organisation=column)


def organisations_visible(principal: Principal) -> ColumnElement[bool]:
    """Organisations the caller may see."""
    return organisation_filter(principal, Organisation.id)


def contracts_visible(principal: Principal) -> ColumnElement[bool]:
    """Contracts the caller may see."""
    return organisation_filter(principal, Contract.organisation_id, Resource.CONTRACTS)


def workers_visible(principal: Principal) -> ColumnElement[bool]:
    """Workers the caller may see."""
    return organisation_filter(principal, Worker.organisation_id, Resource.WORKERS)


def recipients_visible(principal: Principal) -> ColumnElement[bool]:
    """Recipients the caller may see: town managers their town; providers those referred to them."""
    return visible(principal, Resource.RECIPIENTS, town=Recipient.town_id, organisation=referred_to)


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


def sees_every_id_number(principal: Principal) -> bool:
    """Whether every recipient the caller may see is shown with the full ID number (and the birth date): admins and
    managers (a town manager sees only the town's recipients)."""
    return principal.role in (Role.ADMIN, Role.MANAGER)


def require_district_level(principal: Principal) -> None:
    """Areas, stations, organisations and contracts are the district's business."""
    if not allows(principal, Resource.ORGANISATIONS, Action.WRITE):
        raise PermissionDenied(N_("Only district-level managers and admins change areas, stations, organisations and contracts."))


def require_town(principal: Principal, town_id: int, resource: Resource = Resource.RECIPIENTS) -> None:
    """A town manager registers recipients and needs (and refers them) only in their own town."""
    if not allows(principal, resource, Action.WRITE, town_id=town_id):
        raise PermissionDenied(N_("You manage another town; this recipient is not in it."))


def require_organisation(principal: Principal, organisation_id: int) -> None:
    """A provider changes only its own organisation's workers."""
    if not allows(principal, Resource.WORKERS, Action.WRITE, organisation_id=organisation_id):
        raise PermissionDenied(N_("You can only manage your own organisation's workers."))
