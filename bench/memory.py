"""Peak resident memory of a benchmark step, shared by the benchmarks (Linux's VmHWM, reset per step)."""

from __future__ import annotations

import re
import resource
from pathlib import Path


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark of this process (Linux 4.0+), so the next peak is the step's own."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def peak_rss_mb() -> float:
    """Peak resident memory of this process (since the last reset where possible), in MB."""
    try:
        return int(re.search(r"VmHWM:\s+(\d+)", Path("/proc/self/status").read_text()).group(1)) / 1024
    except (OSError, AttributeError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
