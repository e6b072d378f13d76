"""The access table (pure): complete, and consistent with the role → permission table."""

import pytest

from servicehub.auth.permissions import (
    ANONYMOUS,
    ROLE_PERMISSIONS,
    Permission,
    Principal,
    Role,
    has_permission,
)
from servicehub.auth.policy import POLICY, Action, Caller, Resource, Scope, allows, caller_of, scope_of

ROUTE_ONLY = {Permission.PUBLIC, Permission.AUTHENTICATED}


def test_every_resource_has_a_row_for_every_caller():
    assert set(POLICY) == set(Resource)
    for rule in POLICY.values():
        assert set(rule.access) == set(Caller)


@pytest.mark.parametrize("resource", list(Resource))
def test_a_caller_reaches_a_resource_only_with_a_permission_its_routes_declare(resource):
    rule = POLICY[resource]
    for caller, access in rule.access.items():
        for scope, permissions in ((access.read, rule.read), (access.write, rule.write)):
            if scope is not Scope.NONE:
                assert any(has_permission(caller.role, p) for p in permissions), (resource, caller, scope)


@pytest.mark.parametrize("resource", list(Resource))
def test_holding_a_resources_permission_gives_a_role_some_reach(resource):
    """A district manager is the manager role's full reach: holding the permission means it reaches the
    resource; every other role is one kind of caller, which reaches it exactly when it holds the permission."""
    rule = POLICY[resource]
    for caller in (c for c in Caller if c is not Caller.TOWN_MANAGER):
        access = rule.access[caller]
        for scope, permissions in ((access.read, rule.read), (access.write, rule.write)):
            if not permissions:
                continue
            holds = any(has_permission(caller.role, p) for p in permissions)
            assert holds == (scope is not Scope.NONE), (resource, caller, scope)


def test_a_town_manager_never_reaches_further_than_a_district_manager():
    wider = {Scope.ALL: 3, Scope.TOWN: 2, Scope.ORGANISATION: 2, Scope.WORKER: 1, Scope.NONE: 0}
    for resource, rule in POLICY.items():
        town, district = rule.access[Caller.TOWN_MANAGER], rule.access[Caller.DISTRICT_MANAGER]
        assert wider[town.read] <= wider[district.read] and wider[town.write] <= wider[district.write], resource


def test_every_permission_a_role_holds_reaches_some_resource():
    used = {p for rule in POLICY.values() for p in rule.read | rule.write}
    assert {p for held in ROLE_PERMISSIONS.values() for p in held} - used - ROUTE_ONLY == set()


def test_scopes_fit_the_caller():
    """A town scope only for town managers, an organisation one only for providers, a worker one only for
    caregivers: each names something the caller has."""
    fits = {Scope.TOWN: {Caller.TOWN_MANAGER}, Scope.ORGANISATION: {Caller.PROVIDER_ADMIN, Caller.CAREGIVER},
            Scope.WORKER: {Caller.CAREGIVER}}
    for resource, rule in POLICY.items():
        for caller, access in rule.access.items():
            for scope in (access.read, access.write):
                assert caller in fits.get(scope, set(Caller)), (resource, caller, scope)


def test_the_auditor_changes_nothing_and_the_caregiver_sees_nothing_organisation_wide():
    assert all(rule.access[Caller.AUDITOR].write is Scope.NONE for rule in POLICY.values())
    caregiver = {resource: rule.access[Caller.CAREGIVER].read for resource, rule in POLICY.items()}
    assert {r for r, scope in caregiver.items() if scope is not Scope.NONE} == {
        Resource.VISITS, Resource.ROSTERS, Resource.RECORDS}
    assert set(caregiver.values()) == {Scope.WORKER, Scope.NONE}


def test_the_leaks_of_issue_19_are_closed_in_the_table():
    assert POLICY[Resource.CARDS].access[Caller.TOWN_MANAGER].read is Scope.TOWN
    for resource in (Resource.SCHEDULE_RUNS, Resource.SCHEDULE_SETTINGS, Resource.DAYS_OFF):
        assert POLICY[resource].access[Caller.CAREGIVER].read is Scope.NONE
    for resource in (Resource.FROZEN_REPORTS, Resource.SETTLEMENTS, Resource.SCHEDULE_RUNS):
        assert POLICY[resource].access[Caller.TOWN_MANAGER].read is Scope.NONE


def test_the_kind_of_caller():
    assert caller_of(ANONYMOUS) is None
    assert caller_of(Principal(1, "m", Role.MANAGER)) is Caller.DISTRICT_MANAGER
    assert caller_of(Principal(1, "m", Role.MANAGER, town_id=4)) is Caller.TOWN_MANAGER
    assert caller_of(Principal(1, "c", Role.CAREGIVER, organisation_id=2, worker_id=3)) is Caller.CAREGIVER
    assert {c.role for c in Caller} == set(Role)


def test_allows_one_row_by_the_scope():
    town = Principal(1, "m", Role.MANAGER, town_id=4)
    assert allows(town, Resource.RECIPIENTS, town_id=4)
    assert not allows(town, Resource.RECIPIENTS, town_id=5)
    assert not allows(town, Resource.RECIPIENTS)
    assert not allows(town, Resource.SETTLEMENTS, town_id=4)
    caregiver = Principal(2, "c", Role.CAREGIVER, organisation_id=7, worker_id=9)
    assert allows(caregiver, Resource.RECORDS, Action.WRITE, organisation_id=7, worker_id=9)
    assert not allows(caregiver, Resource.RECORDS, Action.WRITE, organisation_id=7, worker_id=10)
    assert not allows(caregiver, Resource.SCHEDULE_SETTINGS, organisation_id=7)
    unlinked = Principal(3, "c", Role.CAREGIVER, organisation_id=7)
    assert not allows(unlinked, Resource.VISITS, worker_id=None)
    provider = Principal(4, "p", Role.PROVIDER_ADMIN, organisation_id=7)
    assert allows(provider, Resource.SCHEDULE_RUNS, Action.WRITE, organisation_id=7)
    assert not allows(provider, Resource.SCHEDULE_RUNS, Action.WRITE, organisation_id=8)
    assert allows(Principal(5, "a", Role.AUDITOR), Resource.FROZEN_REPORTS)
    assert not allows(Principal(5, "a", Role.AUDITOR), Resource.FROZEN_REPORTS, Action.WRITE)
    assert scope_of(ANONYMOUS, Resource.AREAS) is Scope.NONE
