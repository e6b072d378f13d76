"""`servicehub scheduler`: the one process that runs the scheduled jobs."""

from __future__ import annotations

import signal
import threading

import click
from flask import current_app
from flask.cli import with_appcontext


@click.command("scheduler")
@click.option("--seconds", type=float, help="Stop after this long (tests); default: until stopped")
@with_appcontext
def scheduler_command(seconds: float | None) -> None:
    """Run the scheduled jobs (late/missed visits, nightly visit generation) while holding the lease."""
    from servicehub.jobs.runner import run_scheduler

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    if seconds:
        threading.Timer(seconds, stop.set).start()
    run_scheduler(current_app._get_current_object(), stop)
