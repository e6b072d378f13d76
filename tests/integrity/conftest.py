"""Integrity fixtures: the service-record ones."""

from tests.scheduling.fixtures import inline, served  # noqa: F401 - fixtures
from tests.visits.evv import day  # noqa: F401 - fixture
