"""The arithmetic of slowing down password guessing: how long to wait after some failed sign-ins. Pure module.

Waits grow with every failure past the free ones and never lock anyone out for longer than the cap; which
failures count (per account and address, per address, per account from unknown addresses) is the service's.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta


def failure_delay(failures: int, free: int, first: float, cap: float) -> float:
    """Seconds to wait after the last of `failures` failed attempts: none for fewer than `free`, `first` after the
    `free`-th, twice as long after each further one, never more than `cap`."""
    if failures < free:
        return 0.0
    doublings = failures - free
    if doublings >= 64:  # 2**64 seconds is past any cap
        return float(cap)
    return float(min(cap, first * 2**doublings))


def retry_after(ready_at: datetime, now: datetime) -> int:
    """Whole seconds from `now` until `ready_at` (rounded up, as Retry-After counts them); 0 once it has passed."""
    return max(0, math.ceil((ready_at - now) / timedelta(seconds=1)))
