"""The role → permission table (pure)."""

import pytest

from servicehub.auth.permissions import (
    ANONYMOUS,
    ROLE_PERMISSIONS,
    Permission,
    Principal,
    Role,
    has_permission,
)


def test_every_role_is_in_the_table():
    assert set(ROLE_PERMISSIONS) == set(Role)


@pytest.mark.parametrize("role", list(Role))
def test_public_and_authenticated(role):
    assert has_permission(role, Permission.PUBLIC)
    assert has_permission(role, Permission.AUTHENTICATED)


def test_anonymous_holds_only_public():
    assert ANONYMOUS.can(Permission.PUBLIC)
    assert not ANONYMOUS.can(Permission.AUTHENTICATED)
    assert not ANONYMOUS.can(Permission.AUDIT_READ)


def test_auditor_reads_the_audit_log_but_manages_no_users():
    auditor = Principal(1, "a", Role.AUDITOR)
    assert auditor.can(Permission.AUDIT_READ)
    assert not auditor.can(Permission.USERS_MANAGE)


def test_only_admin_manages_users():
    assert [r for r in Role if has_permission(r, Permission.USERS_MANAGE)] == [Role.ADMIN]
