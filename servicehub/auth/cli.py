"""User commands: `servicehub users create|list|set-password|deactivate` and `servicehub demo users`."""

from __future__ import annotations

import os
import secrets

import click

from servicehub.auth import services
from servicehub.auth.permissions import COMMAND_LINE, Role
from servicehub.cli import app_command, demo_cli
from servicehub.errors import NotFound


def _password(prompt: str) -> str:
    """SERVICEHUB_PASSWORD for scripts; otherwise ask twice, hidden."""
    return os.environ.get("SERVICEHUB_PASSWORD") or click.prompt(prompt, hide_input=True, confirmation_prompt=True)


@click.group("users")
def users_cli() -> None:
    """Manage user accounts."""


@users_cli.command("create")
@click.option("--username", required=True)
@click.option("--role", required=True, type=click.Choice([r.value for r in Role]))
@click.option("--organisation", "organisation_id", type=int, help="Organisation id (provider_admin, caregiver)")
@click.option("--town", help="Town (镇/街道) code a manager is confined to")
@click.option("--display-name", default="")
@app_command
def create_command(username, role, organisation_id, town, display_name) -> None:
    """Create a user; the password is asked for (or read from SERVICEHUB_PASSWORD)."""
    user = services.create_user(
        username=username, role=role, password=_password("Password"), display_name=display_name,
        organisation_id=organisation_id, town=town,
    )
    click.echo(f"created {user.username} ({user.role}, id {user.id})")


@users_cli.command("list")
@app_command
def list_command() -> None:
    """List users."""
    users, _ = services.list_users(page=1, page_size=10_000)
    for u in users:
        where = u.organisation.short_name or u.organisation.name_zh if u.organisation else (u.town.name_zh if u.town else "")
        click.echo(f"{u.id:>4}  {u.username:<24} {u.role:<15} {'active' if u.active else 'INACTIVE':<9} {where}")


@users_cli.command("set-password")
@click.argument("username")
@app_command
def set_password_command(username: str) -> None:
    """Set a user's password (signs them out everywhere)."""
    services.set_password(services.get_user_by_username(username), _password("New password"))
    click.echo(f"password of {username} changed")


@users_cli.command("deactivate")
@click.argument("username")
@app_command
def deactivate_command(username: str) -> None:
    """Deactivate a user (users are never deleted: the audit log refers to them)."""
    user = services.get_user_by_username(username)
    services.update_user(user.id, {"active": False}, COMMAND_LINE)
    click.echo(f"{username} deactivated")


# username, role, display name, organisation (index into the demo organisations), town code
DEMO_ACCOUNTS = [
    ("admin", Role.ADMIN, "系统管理员", None, None),
    ("manager", Role.MANAGER, "区民政局 王科长", None, None),
    ("manager.dagang", Role.MANAGER, "大港街道 李干事", None, "321191001"),
    ("provider", Role.PROVIDER_ADMIN, "乐龄居家 管理员", 0, None),
    ("caregiver", Role.CAREGIVER, "乐龄居家 护理员", 0, None),
    ("auditor", Role.AUDITOR, "审计评估员", None, None),
]


@demo_cli.command("users")
@click.option("--reset", is_flag=True, help="Give existing demo accounts new passwords too")
@app_command
def demo_users_command(reset: bool) -> None:
    """Create one demo account per role and print their passwords (once: they are not stored in clear)."""
    from servicehub.registry.demo_loader import link_demo_caregiver
    from servicehub.registry.services import list_active_organisations_by_credit_code

    organisations = list_active_organisations_by_credit_code()
    lines = []
    for username, role, name, org_index, town in DEMO_ACCOUNTS:
        password = secrets.token_urlsafe(9)
        try:
            user = services.get_user_by_username(username)
        except NotFound:
            organisation_id = organisations[org_index].id if org_index is not None else None
            services.create_user(username=username, role=role, password=password, display_name=name,
                                 organisation_id=organisation_id, town=town)
        else:
            if not reset:
                lines.append(f"  {username:<16} {role.value:<15} (exists; `servicehub demo users --reset` for a new password)")
                continue
            services.set_password(user, password)
        lines.append(f"  {username:<16} {role.value:<15} password: {password}")
    worker = link_demo_caregiver()
    if worker is not None:
        lines.append(f"  caregiver is worker {worker.employee_no} ({worker.name})")
    click.echo("Demo accounts (sign in at /login):")
    click.echo("\n".join(lines))
