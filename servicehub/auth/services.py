"""Auth use cases: users, passwords, sign-in slowed down after failures, API tokens, and reading the audit log."""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import func, select
from sqlalchemy.orm import joinedload
from werkzeug.security import check_password_hash, generate_password_hash

from servicehub.auth.audit import Actor, record_event
from servicehub.auth.models import ApiToken, AuditLog, LoginAttempt, User, new_session_nonce
from servicehub.auth.permissions import ORGANISATION_ROLES, Principal, Role
from servicehub.auth.throttle import failure_delay, retry_after
from servicehub.database import paginate, utcnow
from servicehub.errors import N_, Conflict, NotFound, RateLimited, Unauthenticated, ValidationFailed
from servicehub.extensions import db
from servicehub.registry.models import Area, AreaLevel, Organisation, OrganisationStatus

USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{2,63}$")
MIN_PASSWORD_LENGTH = 10
TOKEN_PREFIX = "shb_"

# Verifying against this keeps an unknown username as slow as a wrong password.
_DUMMY_HASH = generate_password_hash("not-a-real-password", method="scrypt")


def _hash(password: str) -> str:
    return generate_password_hash(password, method=current_app.config["SERVICEHUB_PASSWORD_HASH"])


def password_problem(password: str) -> str | None:
    """Why a new password is not acceptable, or None."""
    if not isinstance(password, str) or len(password) < MIN_PASSWORD_LENGTH:
        return f"A password has at least {MIN_PASSWORD_LENGTH} characters."
    if len(set(password)) < 4:
        return "A password needs at least 4 different characters."
    return None


def principal_of(user: User) -> Principal:
    """The services' view of a signed-in user."""
    return Principal(
        user_id=user.id,
        username=user.username,
        role=Role(user.role),
        organisation_id=user.organisation_id,
        town_id=user.town_id,
        worker_id=user.worker_id,
    )


# --- users -----------------------------------------------------------------------------------


def _resolve_confinement(role: str, organisation_id: int | None, town_code: str | None) -> tuple[int | None, int | None]:
    """Check the organisation / town a role is confined to; returns (organisation_id, town_id)."""
    errors: dict[str, list[str]] = {}
    if role in ORGANISATION_ROLES:
        if organisation_id is None:
            errors["organisation_id"] = [f"A {role} belongs to one organisation; give its id."]
        else:
            organisation = db.session.get(Organisation, organisation_id)
            if organisation is None:
                errors["organisation_id"] = [f"No organisation with id {organisation_id}."]
            elif organisation.status != OrganisationStatus.ACTIVE:
                errors["organisation_id"] = [f"Organisation {organisation_id} is {organisation.status}."]
    elif organisation_id is not None:
        errors["organisation_id"] = [f"Only {', '.join(sorted(ORGANISATION_ROLES))} users belong to an organisation."]
    town_id = None
    if town_code:
        if role != Role.MANAGER:
            errors["town"] = ["Only managers can be confined to a town."]
        else:
            town = db.session.scalars(select(Area).where(Area.code == town_code)).one_or_none()
            if town is None or town.level != AreaLevel.TOWN:
                errors["town"] = [f"No town (镇/街道) with code {town_code!r}."]
            else:
                town_id = town.id
    if errors:
        raise ValidationFailed(N_("The user's organisation or town is not valid."), errors)
    return organisation_id, town_id


def create_user(
    *,
    username: str,
    role: str,
    password: str,
    display_name: str = "",
    organisation_id: int | None = None,
    town: str | None = None,
    language: str | None = None,
) -> User:
    """Create a user; the role decides whether an organisation or town is required."""
    errors: dict[str, list[str]] = {}
    username = (username or "").strip().lower()
    if not USERNAME.fullmatch(username):
        errors["username"] = ["3 to 64 characters: lower-case letters, digits, '.', '_' or '-'."]
    if role not in {r.value for r in Role}:
        errors["role"] = [f"Unknown role {role!r}; one of {', '.join(r.value for r in Role)}."]
    if problem := password_problem(password):
        errors["password"] = [problem]
    if errors:
        raise ValidationFailed(N_("The user cannot be created."), errors)
    organisation_id, town_id = _resolve_confinement(role, organisation_id, town)
    if db.session.scalars(select(User.id).where(User.username == username)).first() is not None:
        raise Conflict(N_("The username '%(username)s' is taken.", username=username), {"username": ["Already taken."]})
    user = User(
        username=username,
        role=role,
        display_name=display_name or username,
        organisation_id=organisation_id,
        town_id=town_id,
        password_hash=_hash(password),
        password_changed_at=utcnow(),
        language=language,
    )
    db.session.add(user)
    db.session.commit()
    return user


def get_user(user_id: int) -> User:
    """A user by id; NotFound otherwise."""
    user = db.session.get(User, user_id)
    if user is None:
        raise NotFound(N_("No user with id %(id)s.", id=user_id))
    return user


def get_user_by_username(username: str) -> User:
    """A user by username; NotFound otherwise."""
    user = db.session.scalars(select(User).where(User.username == username.strip().lower())).one_or_none()
    if user is None:
        raise NotFound(N_("No user named '%(username)s'.", username=username), {"username": ["Unknown user."]})
    return user


def list_users(*, role: str | None = None, active: bool | None = None, page: int = 1, page_size: int = 50):
    """Users by username: (page, total)."""
    stmt = select(User).order_by(User.username)
    if role:
        stmt = stmt.where(User.role == role)
    if active is not None:
        stmt = stmt.where(User.active.is_(active))
    return paginate(db.session, stmt, page, page_size)


def update_user(user_id: int, changes: dict, by: Principal) -> User:
    """Change a user's name, role, confinement or active flag (admin); signs them out if access changed."""
    user = get_user(user_id)
    if user.id == by.user_id and (changes.get("active") is False or changes.get("role", user.role) != user.role):
        raise Conflict(N_("You cannot deactivate yourself or change your own role."))
    role = changes.get("role", user.role)
    organisation_id = changes.get("organisation_id", user.organisation_id if role in ORGANISATION_ROLES else None)
    town_code = changes.get("town", user.town.code if user.town and role == Role.MANAGER else None)
    organisation_id, town_id = _resolve_confinement(role, organisation_id, town_code)
    access_changed = (role, organisation_id, town_id) != (user.role, user.organisation_id, user.town_id)
    user.role, user.organisation_id, user.town_id = role, organisation_id, town_id
    if "display_name" in changes:
        user.display_name = changes["display_name"]
    if "language" in changes:
        user.language = changes["language"]
    if "active" in changes:
        access_changed = access_changed or changes["active"] != user.active
        user.active = changes["active"]
    if access_changed:
        user.session_nonce = new_session_nonce()
    db.session.commit()
    return user


def set_password(user: User, password: str) -> None:
    """Set a new password and sign the user out of every session."""
    if problem := password_problem(password):
        raise ValidationFailed(N_("The password is not acceptable."), {"password": [problem]})
    user.password_hash = _hash(password)
    user.password_changed_at = utcnow()
    user.session_nonce = new_session_nonce()
    db.session.commit()


# --- signing in ------------------------------------------------------------------------------


def _failures(since: datetime, *conditions, counted=None) -> tuple[int, datetime | None]:
    """The failed attempts matching `conditions` since `since`: (how many, or how many `counted` values they
    have, and when the last was)."""
    count, last = db.session.execute(
        select(func.count() if counted is None else func.count(counted.distinct()), func.max(LoginAttempt.at))
        .where(LoginAttempt.success.is_(False), LoginAttempt.at >= since, *conditions)
    ).one()
    return count, last


def sign_in_wait(username: str, ip: str) -> int:
    """Seconds before `username` may try to sign in again from `ip` (0: now).

    Failures slow down only the account and address that made them, so that nobody can lock an account out from
    elsewhere: after SERVICEHUB_LOGIN_FREE_FAILURES of them the pair waits 1 s, 2 s, 4 s ... (capped), until a
    success from that address starts it afresh. An address that has never signed in to the account waits too
    after many failures from it on any account (SERVICEHUB_LOGIN_MAX_FAILURES_PER_IP within the window), and
    once failures on the account have come from many such addresses (guessing spread over many addresses:
    SERVICEHUB_LOGIN_FREE_ADDRESSES_PER_ACCOUNT, then growing waits as more join); an address the account has
    signed in from before waits for neither.
    """
    config = current_app.config
    now = utcnow()
    remembered = now - timedelta(hours=config["SERVICEHUB_LOGIN_MEMORY_HOURS"])
    first, cap = config["SERVICEHUB_LOGIN_FIRST_WAIT_SECONDS"], config["SERVICEHUB_LOGIN_MAX_WAIT_MINUTES"] * 60
    pair = (LoginAttempt.username == username, LoginAttempt.ip == ip)
    last_success = db.session.scalar(select(func.max(LoginAttempt.at)).where(*pair, LoginAttempt.success.is_(True)))
    count, last = _failures(max(remembered, last_success or remembered), *pair)
    ready = [last + timedelta(seconds=failure_delay(count, config["SERVICEHUB_LOGIN_FREE_FAILURES"], first, cap))
             if last else now]
    if last_success is None:
        window = timedelta(minutes=config["SERVICEHUB_LOGIN_WINDOW_MINUTES"])
        # the failure that must leave the window before the address is under its limit again
        oldest_counted = db.session.scalar(
            select(LoginAttempt.at)
            .where(LoginAttempt.ip == ip, LoginAttempt.success.is_(False), LoginAttempt.at >= now - window)
            .order_by(LoginAttempt.at.desc())
            .offset(config["SERVICEHUB_LOGIN_MAX_FAILURES_PER_IP"] - 1)
            .limit(1)
        )
        if oldest_counted is not None:
            ready.append(oldest_counted + window)
        known = select(LoginAttempt.ip).where(LoginAttempt.username == username, LoginAttempt.success.is_(True))
        addresses, last = _failures(remembered, LoginAttempt.username == username, LoginAttempt.ip.not_in(known),
                                    counted=LoginAttempt.ip)
        if last:
            free = config["SERVICEHUB_LOGIN_FREE_ADDRESSES_PER_ACCOUNT"]
            ready.append(last + timedelta(seconds=failure_delay(addresses, free, first, cap)))
    return retry_after(max(ready), now)


def authenticate(username: str, password: str, ip: str = "") -> User:
    """Check a username and password; raises Unauthenticated, or RateLimited (with Retry-After) while this
    account must wait at this address after repeated failures (`sign_in_wait`), even with the right password."""
    name = (username or "").strip().lower()[:64]
    wait = sign_in_wait(name, ip)
    if wait:
        raise RateLimited(
            N_("Too many failed sign-in attempts. Wait %(seconds)s s, then try again.", seconds=wait),
            code="too_many_attempts",
            headers={"Retry-After": str(wait)},
        )
    user = db.session.scalars(select(User).where(User.username == name)).one_or_none()
    valid = check_password_hash(user.password_hash if user else _DUMMY_HASH, password or "")
    ok = bool(user and valid and user.active)
    db.session.add(LoginAttempt(username=name, ip=ip, success=ok))
    if ok:
        user.last_login_at = utcnow()
        record_event(db.session, "login", "users", user.id, actor=Actor(user.username, user.id, ip or None))
    else:
        record_event(db.session, "login_failed", "users", user.id if user else None, username=name)
    db.session.commit()
    if not ok:
        raise Unauthenticated("Wrong username or password.", code="invalid_credentials")
    return user


def user_for_session(session_id: str) -> User | None:
    """The active user a session cookie's id ("<id>:<nonce>") belongs to, if the nonce still matches."""
    user_id, _, nonce = (session_id or "").partition(":")
    if not user_id.isdigit() or not nonce:
        return None
    user = db.session.get(User, int(user_id))
    if user is None or not user.active or not secrets.compare_digest(user.session_nonce, nonce):
        return None
    return user


# --- API tokens ------------------------------------------------------------------------------


def _token_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def issue_token(user: User, name: str = "", ttl_days: int | None = None) -> ApiToken:
    """Issue a bearer token for `user`; its `secret` is on the returned object only (shown once, never stored)."""
    days = ttl_days or current_app.config["SERVICEHUB_TOKEN_TTL_DAYS"]
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        user_id=user.id,
        name=name,
        token_hash=_token_hash(secret),
        prefix=secret[: len(TOKEN_PREFIX) + 6],
        expires_at=utcnow() + timedelta(days=days),
    )
    db.session.add(token)
    db.session.flush()
    record_event(db.session, "token_issued", "api_tokens", token.id, user_id=user.id, expires_at=token.expires_at)
    db.session.commit()
    token.secret = secret
    return token


def user_for_token(secret: str) -> User | None:
    """The active user a bearer token belongs to, if the token is known, unexpired and unrevoked."""
    if not secret or not secret.startswith(TOKEN_PREFIX):
        return None
    token = db.session.scalars(select(ApiToken).options(joinedload(ApiToken.user))
                               .where(ApiToken.token_hash == _token_hash(secret))).one_or_none()
    now = utcnow()
    if token is None or token.revoked_at is not None or token.expires_at <= now or not token.user.active:
        return None
    if token.last_used_at is None or now - token.last_used_at > timedelta(minutes=5):
        token.last_used_at = now  # coarse, so that reads do not each write
        db.session.commit()
    return token.user


def list_tokens(by: Principal) -> list[ApiToken]:
    """The caller's own tokens, newest first (secrets are never shown again)."""
    return list(
        db.session.scalars(select(ApiToken).where(ApiToken.user_id == by.user_id).order_by(ApiToken.id.desc()))
    )


def revoke_token(token_id: int, by: Principal) -> None:
    """Revoke one of the caller's tokens (an admin may revoke anyone's). Revoking twice is harmless."""
    token = db.session.get(ApiToken, token_id)
    if token is None or (token.user_id != by.user_id and by.role != Role.ADMIN):
        raise NotFound(N_("No token with id %(id)s.", id=token_id))
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        record_event(db.session, "token_revoked", "api_tokens", token.id, user_id=token.user_id)
        db.session.commit()


# --- audit log -------------------------------------------------------------------------------


def list_audit_log(
    *,
    entity_type: str | None = None,
    entity_id: str | None = None,
    user: str | None = None,
    action: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    page: int = 1,
    page_size: int = 50,
):
    """Audit entries, newest first, filtered: (page, total)."""
    stmt = select(AuditLog).order_by(AuditLog.id.desc())
    if entity_type:
        stmt = stmt.where(AuditLog.entity_type == entity_type)
    if entity_id:
        stmt = stmt.where(AuditLog.entity_id == entity_id)
    if user:
        stmt = stmt.where(AuditLog.actor == user)
    if action:
        stmt = stmt.where(AuditLog.action == action)
    if since:
        stmt = stmt.where(AuditLog.at >= since)
    if until:
        stmt = stmt.where(AuditLog.at < until)
    return paginate(db.session, stmt, page, page_size)
