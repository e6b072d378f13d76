"""Service-record test fixtures: the scheduling ones."""

from tests.scheduling.fixtures import inline, served  # noqa: F401 - fixtures
