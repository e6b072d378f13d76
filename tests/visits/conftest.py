"""Service-record test fixtures: the scheduling ones, and today's roster published with the recipients' cards."""

from tests.scheduling.fixtures import inline, served  # noqa: F401 - fixtures
from tests.visits.evv import day  # noqa: F401 - fixture
