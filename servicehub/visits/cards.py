"""Recipients' confirmation cards: a new card (a secret, encrypted at rest, printed once), a code spent at a
check-out, and every refused code kept. The codes themselves are `confirmation.py` (pure)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from flask import current_app
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup
from sqlalchemy import func, select, update

from servicehub import crypto
from servicehub.auth.audit import record_event
from servicehub.auth.permissions import Principal
from servicehub.auth.policy import Action, Resource, Scope, scope_of
from servicehub.database import utcnow
from servicehub.errors import N_, NotFound, PermissionDenied
from servicehub.extensions import db
from servicehub.registry.models import Organisation, Recipient
from servicehub.registry.scope import referred_to, visible
from servicehub.scheduling.models import Visit
from servicehub.timeutil import district_tz
from servicehub.visits import confirmation
from servicehub.visits.models import AttemptOutcome, ConfirmationAttempt, ConfirmationCard

TRIES = (AttemptOutcome.WRONG, AttemptOutcome.EXPIRED, AttemptOutcome.REUSED)
TEMPLATES = Path(__file__).parent / "templates" / "visits"


def _key() -> bytes:
    return current_app.config["SERVICEHUB_DATA_KEY"]


def current_card(recipient_id: int, *, for_update: bool = False) -> ConfirmationCard | None:
    """The recipient's card in force, if any."""
    stmt = (select(ConfirmationCard).where(ConfirmationCard.recipient_id == recipient_id,
                                           ConfirmationCard.revoked_at.is_(None))
            .order_by(ConfirmationCard.card_no.desc()).limit(1))
    return db.session.scalar(stmt.with_for_update() if for_update else stmt)


def tries(visit_id: int) -> int:
    """How many codes were refused for the visit (wrong, expired or reused)."""
    return db.session.scalar(select(func.count(ConfirmationAttempt.id)).where(
        ConfirmationAttempt.visit_id == visit_id, ConfirmationAttempt.outcome.in_(TRIES))) or 0


def spend_code(visit: Visit, code: str, moment: datetime) -> dict | confirmation.Refused:
    """Check a code given for a visit against the recipient's card and, if it is accepted, spend it (in the
    caller's transaction): what the delivery records of it, or why it was refused."""
    if tries(visit.id) >= current_app.config["SERVICEHUB_CODE_TRIES"]:
        return confirmation.Refused(AttemptOutcome.LOCKED.value)
    card = current_card(visit.recipient_id, for_update=True)
    if card is None:
        return confirmation.Refused(AttemptOutcome.NO_CARD.value)
    state = confirmation.CardState(card.printed_codes, card.printed_next, tuple(card.phone_steps or ()))
    outcome = confirmation.check_code(crypto.decrypt(_key(), card.secret_encrypted), code, moment, state)
    if isinstance(outcome, confirmation.Refused):
        return outcome
    used = confirmation.after_use(state, outcome)
    card.printed_next, card.phone_steps = used.printed_next, list(used.phone_steps)
    return {"card": card.card_no, "kind": outcome.kind, "counter": outcome.counter}


def log_refusal(visit_id: int, outcome: str, principal: Principal, ip: str) -> int:
    """Keep a refused code (who, which visit, from where) in the attempts and the audit log; the visit's refused
    tries so far."""
    recipient_id = db.session.scalar(select(Visit.recipient_id).where(Visit.id == visit_id))
    card = current_card(recipient_id)
    db.session.add(ConfirmationAttempt(visit_id=visit_id, recipient_id=recipient_id, card_id=card.id if card else None,
                                       outcome=outcome, user_id=principal.user_id, username=principal.username, ip=ip))
    db.session.flush()
    tried = tries(visit_id)
    # What was tried against which card, never the code itself.
    record_event(db.session, "confirmation_refused", "visits", visit_id, outcome=outcome, ip=ip,
                 recipient_id=recipient_id, card_no=card.card_no if card else None, tries=tried)
    return tried


# --- issuing a card ------------------------------------------------------------------------------------------------


def may_issue(principal: Principal, recipient_id: int) -> Recipient:
    """The recipient, if the caller may print their card: the bureau (a town manager: the town's recipients), or
    a provider admin serving them."""
    if scope_of(principal, Resource.CARDS, Action.WRITE) is Scope.NONE:
        raise PermissionDenied(N_("Only managers and provider admins print confirmation cards."))
    recipient = db.session.scalar(select(Recipient).where(Recipient.id == recipient_id, visible(
        principal, Resource.CARDS, Action.WRITE, town=Recipient.town_id, organisation=referred_to)))
    if recipient is None:
        raise NotFound(N_("No such recipient."))
    return recipient


def new_card(recipient: Recipient, by: Principal, printed_codes: int = confirmation.PRINTED_CODES
             ) -> tuple[ConfirmationCard, ConfirmationCard | None, str]:
    """A new card for the recipient, the card it replaces (revoked now) and its secret (to print, never stored in
    the clear); inside the caller's transaction."""
    replaced = current_card(recipient.id, for_update=True)
    now = utcnow()
    if replaced is not None:
        db.session.execute(update(ConfirmationCard).where(ConfirmationCard.recipient_id == recipient.id,
                                                          ConfirmationCard.revoked_at.is_(None)).values(revoked_at=now))
    number = (db.session.scalar(select(func.max(ConfirmationCard.card_no))
                                .where(ConfirmationCard.recipient_id == recipient.id)) or 0) + 1
    secret = confirmation.new_secret()
    card = ConfirmationCard(recipient_id=recipient.id, card_no=number, issued_at=now, printed_codes=printed_codes,
                            printed_next=0, secret_encrypted=crypto.encrypt(_key(), secret),
                            issued_by_id=by.user_id, issued_by=by.username)
    db.session.add(card)
    db.session.flush()
    record_event(db.session, "confirmation_card_issued", "recipients", recipient.id, card_no=number,
                 replaced=replaced.card_no if replaced else None)
    return card, replaced, secret


def list_cards(principal: Principal, recipient_id: int) -> list[ConfirmationCard]:
    """A recipient's cards, newest first (never their secrets)."""
    may_issue(principal, recipient_id)
    return list(db.session.scalars(select(ConfirmationCard).where(ConfirmationCard.recipient_id == recipient_id)
                                   .order_by(ConfirmationCard.card_no.desc())))


def card_pdf(recipient: Recipient, card: ConfirmationCard, secret: str, issuer: str) -> bytes:
    """The printed card: the QR code a family member's phone reads, and the numbered one-time codes."""
    import segno
    from weasyprint import HTML

    label = f"{recipient.name} #{card.card_no}"
    qr = segno.make(confirmation.phone_uri(secret, label), error="m").svg_inline(scale=4, dark="#000")
    codes = confirmation.printed_list(secret, card.printed_codes)
    html = _templates().get_template("card_pdf.html").render(
        recipient=recipient, card=card, qr=Markup(qr), codes=list(enumerate(codes, start=1)), issuer=issuer,
        issued=card.issued_at.astimezone(district_tz()).strftime("%Y-%m-%d %H:%M"),
        look_ahead=confirmation.LOOK_AHEAD)
    return HTML(string=html).write_pdf()


def issuer_name(principal: Principal) -> str:
    """Who the card says issued it: the provider's organisation, else the civil-affairs bureau."""
    if principal.organisation_id:
        name = db.session.scalar(select(Organisation.name_zh).where(Organisation.id == principal.organisation_id))
        if name:
            return name
    return "民政局"


def _templates() -> Environment:
    return Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=select_autoescape(["html"]))
