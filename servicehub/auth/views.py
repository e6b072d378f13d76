"""Pages for user management (admin) and the audit log (admin, auditor)."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from servicehub.auth import services
from servicehub.auth.access import current_principal, requires
from servicehub.auth.forms import AuditFilterForm, UserCreateForm
from servicehub.auth.permissions import Permission, Role
from servicehub.errors import DomainError
from servicehub.registry import services as registry_services
from servicehub.timeutil import local_days
from servicehub.web.shell import role_label

blp = Blueprint("auth_pages", __name__, template_folder="templates")

PAGE_SIZE = 50


def _user_form() -> UserCreateForm:
    form = UserCreateForm()
    form.role.choices = [(r.value, role_label(r)) for r in Role]
    form.organisation_id.choices = [("", "—")] + [
        (str(o.id), o.name_zh) for o in registry_services.list_active_organisations()
    ]
    form.town.choices = [("", "—")] + [(a.code, a.name_zh) for a in registry_services.list_towns()]
    return form


@blp.route("/admin/users", methods=["GET", "POST"])
@requires(Permission.USERS_MANAGE)
def users():
    """List users and create one."""
    form = _user_form()
    status = 200
    if form.validate_on_submit():
        try:
            user = services.create_user(
                username=form.username.data,
                role=form.role.data,
                password=form.password.data,
                display_name=form.display_name.data or "",
                organisation_id=form.organisation_id.data or None,
                town=form.town.data or None,
            )
        except DomainError as exc:
            status = exc.status
            for field, messages in exc.errors.items():
                target = getattr(form, "town" if field == "town" else field, None)
                if target is not None:
                    target.errors = list(target.errors) + list(messages)
            flash(exc.message, "error")
        else:
            flash(_("User %(name)s created.", name=user.username), "success")
            return redirect(url_for("auth_pages.users"))
    elif request.method == "POST":
        status = 422
    items, total = services.list_users(page=1, page_size=500)
    return render_template("auth/users.html", form=form, users=items, total=total), status


@blp.post("/admin/users/<int:user_id>/active")
@requires(Permission.USERS_MANAGE)
def toggle_active(user_id: int):
    """Deactivate or reactivate a user."""
    user = services.get_user(user_id)
    try:
        services.update_user(user_id, {"active": not user.active}, current_principal())
    except DomainError as exc:
        flash(exc.message, "error")
    return redirect(url_for("auth_pages.users"))


@blp.get("/audit")
@requires(Permission.AUDIT_READ)
def audit_log():
    """The audit log, newest first, with filters."""
    form = AuditFilterForm(request.args)
    form.validate()
    page = max(1, form.page.data or 1)
    since, until = local_days(form.date_from.data, form.date_to.data)
    items, total = services.list_audit_log(
        entity_type=form.entity_type.data or None,
        entity_id=form.entity_id.data or None,
        user=form.user.data or None,
        since=since,
        until=until,
        page=page,
        page_size=PAGE_SIZE,
    )
    return render_template(
        "auth/audit.html", form=form, entries=items, total=total, page=page,
        last_page=max(1, -(-total // PAGE_SIZE)),
    )
