"""The users commands and the demo accounts."""

import pytest
from sqlalchemy import func, select

from servicehub.auth.models import User
from servicehub.extensions import db


def user_count(app):
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(User))


def test_create_list_and_set_password(runner, app, demo, monkeypatch):
    monkeypatch.setenv("SERVICEHUB_PASSWORD", "a-long-password-1")
    created = runner.invoke(args=["users", "create", "--username", "zhao.lei", "--role", "manager", "--town", "321191003"])
    assert created.exit_code == 0, created.output
    listed = runner.invoke(args=["users", "list"])
    assert "zhao.lei" in listed.output and "丁岗镇" in listed.output
    monkeypatch.setenv("SERVICEHUB_PASSWORD", "another-long-password")
    assert runner.invoke(args=["users", "set-password", "zhao.lei"]).exit_code == 0
    from servicehub.auth import services

    with app.app_context():
        assert services.authenticate("zhao.lei", "another-long-password").username == "zhao.lei"


def test_password_is_prompted_when_not_in_the_environment(runner, demo, monkeypatch):
    monkeypatch.delenv("SERVICEHUB_PASSWORD", raising=False)
    result = runner.invoke(
        args=["users", "create", "--username", "prompted", "--role", "auditor"],
        input="a-long-password-1\na-long-password-1\n",
    )
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--role", "wizard"], "wizard"),
        (["--role", "caregiver", "--organisation", "999"], "No organisation with id 999"),
        (["--role", "caregiver"], "organisation"),
        (["--role", "manager", "--town", "000000"], "No town"),
    ],
)
def test_bad_arguments_are_clear_errors_and_write_nothing(runner, app, demo, monkeypatch, args, message):
    monkeypatch.setenv("SERVICEHUB_PASSWORD", "a-long-password-1")
    before = user_count(app)
    result = runner.invoke(args=["users", "create", "--username", "someone", *args])
    assert result.exit_code != 0
    assert message in result.output and "Traceback" not in result.output
    assert user_count(app) == before


def test_cli_changes_are_audited_as_the_command_line(runner, app, demo, monkeypatch):
    from servicehub.auth.models import AuditLog

    monkeypatch.setenv("SERVICEHUB_PASSWORD", "a-long-password-1")
    runner.invoke(args=["users", "create", "--username", "from.cli", "--role", "auditor"])
    with app.app_context():
        entry = db.session.scalars(select(AuditLog).where(AuditLog.entity_type == "users").order_by(AuditLog.id.desc())).first()
        assert entry.actor.startswith("cli:") and entry.changes["username"] == [None, "from.cli"]


def test_deactivate(runner, app, demo):
    assert runner.invoke(args=["users", "deactivate", "caregiver"]).exit_code == 0
    with app.app_context():
        assert db.session.get(User, demo["caregiver"]).active is False
    assert runner.invoke(args=["users", "deactivate", "nobody"]).exit_code == 1


def test_demo_users_print_passwords_once_then_reset(runner, app, catalog):
    assert runner.invoke(args=["seed", "demo"]).exit_code == 0
    first = runner.invoke(args=["demo", "users"])
    assert first.exit_code == 0, first.output
    assert first.output.count("password:") == 6
    second = runner.invoke(args=["demo", "users"])
    assert "password:" not in second.output and second.output.count("exists") == 6
    third = runner.invoke(args=["demo", "users", "--reset"])
    assert third.output.count("password:") == 6
    with app.app_context():
        roles = dict(db.session.execute(select(User.username, User.role)).all())
    assert roles == {"admin": "admin", "manager": "manager", "manager.dagang": "manager", "provider": "provider_admin",
                     "caregiver": "caregiver", "auditor": "auditor"}
