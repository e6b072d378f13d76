"""Scheduling test fixtures (shared with the service-record tests)."""

from tests.scheduling.fixtures import inline, served  # noqa: F401 - fixtures
