"""Auth endpoints: bearer tokens, the signed-in user, user management and the audit log."""

from flask.views import MethodView
from flask_smorest import Blueprint

from servicehub.auth import services
from servicehub.auth.access import client_ip, current_principal, public, requires
from servicehub.auth.permissions import Permission
from servicehub.auth.schemas import (
    AuditEntrySchema,
    AuditLogArgsSchema,
    IssuedTokenSchema,
    MeSchema,
    PasswordSchema,
    TokenRequestSchema,
    TokenSchema,
    UserCreateSchema,
    UserListArgsSchema,
    UserSchema,
    UserUpdateSchema,
)
from servicehub.timeutil import local_days

blp = Blueprint("auth", __name__, url_prefix="/api/v1", description="Sign-in tokens, users and the audit log.")


@blp.route("/auth/tokens")
class TokenList(MethodView):
    @public
    @blp.arguments(TokenRequestSchema)
    @blp.response(201, IssuedTokenSchema)
    @blp.alt_response(401, response="UNAUTHORIZED")
    @blp.alt_response(429, response="TOO_MANY_REQUESTS")
    def post(self, data):
        """Exchange a username and password for a bearer token (shown once; store it safely)."""
        user = services.authenticate(data["username"], data["password"], client_ip())
        return services.issue_token(user, data["name"], data["ttl_days"])

    @requires(Permission.AUTHENTICATED)
    @blp.response(200, TokenSchema(many=True))
    def get(self):
        """List your own tokens (without their secrets)."""
        return services.list_tokens(current_principal())


@blp.route("/auth/tokens/<int:token_id>")
class TokenDetail(MethodView):
    @requires(Permission.AUTHENTICATED)
    @blp.response(204)
    @blp.alt_response(404, response="NOT_FOUND")
    def delete(self, token_id):
        """Revoke one of your tokens."""
        services.revoke_token(token_id, current_principal())


@blp.route("/auth/me")
class Me(MethodView):
    @requires(Permission.AUTHENTICATED)
    @blp.response(200, MeSchema)
    def get(self):
        """Who you are signed in as, and your permissions."""
        return services.get_user(current_principal().user_id)


@blp.route("/users")
class UserList(MethodView):
    @requires(Permission.USERS_MANAGE)
    @blp.arguments(UserListArgsSchema, location="query")
    @blp.response(200, UserSchema(many=True))
    @blp.paginate()
    def get(self, args, pagination_parameters):
        """List users."""
        items, pagination_parameters.item_count = services.list_users(
            **args, page=pagination_parameters.page, page_size=pagination_parameters.page_size
        )
        return items

    @requires(Permission.USERS_MANAGE)
    @blp.arguments(UserCreateSchema)
    @blp.response(201, UserSchema)
    @blp.alt_response(409, response="CONFLICT")
    def post(self, data):
        """Create a user."""
        return services.create_user(**data)


@blp.route("/users/<int:user_id>")
class UserDetail(MethodView):
    @requires(Permission.USERS_MANAGE)
    @blp.response(200, UserSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, user_id):
        """One user."""
        return services.get_user(user_id)

    @requires(Permission.USERS_MANAGE)
    @blp.arguments(UserUpdateSchema)
    @blp.response(200, UserSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(409, response="CONFLICT")
    def patch(self, data, user_id):
        """Change a user's name, role, organisation, town or active flag."""
        return services.update_user(user_id, data, current_principal())


@blp.route("/users/<int:user_id>/password")
class UserPassword(MethodView):
    @requires(Permission.USERS_MANAGE)
    @blp.arguments(PasswordSchema)
    @blp.response(204)
    @blp.alt_response(404, response="NOT_FOUND")
    def put(self, data, user_id):
        """Set a user's password; they are signed out everywhere."""
        services.set_password(services.get_user(user_id), data["password"])


@blp.route("/audit-log")
class AuditLogList(MethodView):
    @requires(Permission.AUDIT_READ)
    @blp.arguments(AuditLogArgsSchema, location="query")
    @blp.response(200, AuditEntrySchema(many=True))
    @blp.paginate()
    def get(self, args, pagination_parameters):
        """The audit log, newest first: filter by entity, user, action and local dates."""
        since, until = local_days(args.pop("date_from", None), args.pop("date_to", None))
        items, pagination_parameters.item_count = services.list_audit_log(
            **args, since=since, until=until, page=pagination_parameters.page,
            page_size=pagination_parameters.page_size,
        )
        return items
