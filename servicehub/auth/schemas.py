"""Auth schemas: users, tokens and audit entries in and out of the API."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate

from servicehub.auth.permissions import ROLE_PERMISSIONS, Role
from servicehub.auth.services import MIN_PASSWORD_LENGTH
from servicehub.config import LANGUAGES
from servicehub.validators import ID

ROLES = [r.value for r in Role]
USERNAME = validate.Regexp(
    r"^[a-z0-9][a-z0-9._-]{2,63}$", error="3 to 64 characters: lower-case letters, digits, '.', '_' or '-'."
)
PASSWORD = validate.Length(min=MIN_PASSWORD_LENGTH, max=256)


class UserSchema(ma.Schema):
    """A user as the API shows it (never the password or its hash)."""

    id = fields.Integer(dump_only=True)
    username = fields.String(dump_only=True)
    display_name = fields.String(dump_only=True)
    role = fields.String(dump_only=True, metadata={"enum": ROLES})
    organisation_id = fields.Integer(dump_only=True, allow_none=True)
    organisation_name = fields.Function(
        lambda u: u.organisation.name_zh if u.organisation else None, dump_only=True, allow_none=True,
        metadata={"type": "string"},
    )
    town = fields.Function(
        lambda u: u.town.code if u.town else None, dump_only=True, allow_none=True,
        metadata={"type": "string", "description": "Code of the town a manager is confined to"},
    )
    active = fields.Boolean(dump_only=True)
    language = fields.String(dump_only=True, allow_none=True)
    last_login_at = fields.AwareDateTime(dump_only=True, allow_none=True)
    created_at = fields.AwareDateTime(dump_only=True)


class MeSchema(UserSchema):
    """The signed-in user, with what they may do."""

    permissions = fields.Method("_permissions", dump_only=True, metadata={"type": "array", "items": {"type": "string"}})

    def _permissions(self, user) -> list[str]:
        return sorted(ROLE_PERMISSIONS[Role(user.role)])


class UserCreateSchema(ma.Schema):
    """A new user."""

    username = fields.String(required=True, validate=USERNAME)
    password = fields.String(required=True, load_only=True, validate=PASSWORD)
    role = fields.String(required=True, validate=validate.OneOf(ROLES))
    display_name = fields.String(load_default="", validate=validate.Length(max=100))
    organisation_id = fields.Integer(
        load_default=None, allow_none=True, validate=ID,
        metadata={"description": "Required for provider_admin and caregiver"},
    )
    town = fields.String(
        load_default=None, allow_none=True, validate=validate.Length(max=12),
        metadata={"description": "Town (镇/街道) code a manager is confined to"},
    )
    language = fields.String(load_default=None, allow_none=True, validate=validate.OneOf(LANGUAGES))


class UserUpdateSchema(ma.Schema):
    """Changes to a user; only the fields given are changed."""

    display_name = fields.String(validate=validate.Length(max=100))
    role = fields.String(validate=validate.OneOf(ROLES))
    organisation_id = fields.Integer(allow_none=True, validate=ID)
    town = fields.String(allow_none=True, validate=validate.Length(max=12))
    active = fields.Boolean()
    language = fields.String(allow_none=True, validate=validate.OneOf(LANGUAGES))


class UserListArgsSchema(ma.Schema):
    """Filters of the user list."""

    role = fields.String(validate=validate.OneOf(ROLES))
    active = fields.Boolean()


class PasswordSchema(ma.Schema):
    """A new password."""

    password = fields.String(required=True, load_only=True, validate=PASSWORD)


class TokenRequestSchema(ma.Schema):
    """Credentials for a new bearer token."""

    username = fields.String(required=True, validate=validate.Length(min=1, max=64))
    password = fields.String(required=True, load_only=True, validate=validate.Length(min=1, max=256))
    name = fields.String(load_default="", validate=validate.Length(max=100), metadata={"description": "What it is for"})
    ttl_days = fields.Integer(load_default=None, validate=validate.Range(min=1, max=365))


class TokenSchema(ma.Schema):
    """A token as listed: its prefix identifies it; the secret is never shown again."""

    id = fields.Integer(dump_only=True)
    name = fields.String(dump_only=True)
    prefix = fields.String(dump_only=True)
    created_at = fields.AwareDateTime(dump_only=True)
    expires_at = fields.AwareDateTime(dump_only=True)
    last_used_at = fields.AwareDateTime(dump_only=True, allow_none=True)
    revoked_at = fields.AwareDateTime(dump_only=True, allow_none=True)


class IssuedTokenSchema(TokenSchema):
    """A newly issued token, with its secret (shown this once)."""

    token = fields.String(
        attribute="secret", dump_only=True, metadata={"description": "Send as 'Authorization: Bearer <token>'"}
    )
    user = fields.Nested(UserSchema, dump_only=True)


class AuditEntrySchema(ma.Schema):
    """One audit log entry."""

    id = fields.Integer(dump_only=True)
    at = fields.AwareDateTime(dump_only=True)
    actor = fields.String(dump_only=True)
    actor_id = fields.Integer(dump_only=True, allow_none=True)
    action = fields.String(dump_only=True)
    entity_type = fields.String(dump_only=True)
    entity_id = fields.String(dump_only=True, allow_none=True)
    changes = fields.Dict(dump_only=True)
    ip = fields.String(dump_only=True, allow_none=True)


class AuditLogArgsSchema(ma.Schema):
    """Filters of the audit log."""

    entity_type = fields.String(validate=validate.Length(max=40), metadata={"description": "e.g. users, service_types"})
    entity_id = fields.String(validate=validate.Length(max=40))
    user = fields.String(validate=validate.Length(max=100), metadata={"description": "The actor's username"})
    action = fields.String(validate=validate.Length(max=40))
    date_from = fields.Date(data_key="from", metadata={"description": "First local day, inclusive"})
    date_to = fields.Date(data_key="to", metadata={"description": "Last local day, inclusive"})

    @ma.validates_schema
    def _ordered(self, data, **kwargs):
        if data.get("date_from") and data.get("date_to") and data["date_from"] > data["date_to"]:
            raise ma.ValidationError("'from' is after 'to'.", "from")
