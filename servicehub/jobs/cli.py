"""`servicehub scheduler`: the one process that runs the scheduled jobs; `servicehub serve`: the pages and the jobs
in one process, for trying ServiceHub (`make run`)."""

from __future__ import annotations

import logging
import os
import signal
import threading

import click
from flask import current_app
from flask.cli import with_appcontext


def _stop_on_signals(stop: threading.Event) -> None:
    """SIGINT (Ctrl-C) and SIGTERM set `stop`; a second one while stopping ends the process at once."""

    def handler(signum, _frame):
        if stop.is_set():
            os._exit(128 + signum)
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, handler)


@click.command("scheduler")
@click.option("--seconds", type=float, help="Stop after this long (tests); default: until stopped")
@with_appcontext
def scheduler_command(seconds: float | None) -> None:
    """Run the scheduled jobs (late/missed visits, nightly visit generation) while holding the lease."""
    from servicehub.jobs.runner import run_scheduler

    stop = threading.Event()
    _stop_on_signals(stop)
    if seconds:
        threading.Timer(seconds, stop.set).start()
    run_scheduler(current_app._get_current_object(), stop)


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on")
@click.option("--port", default=5000, show_default=True, type=click.IntRange(0, 65535), help="Port to listen on")
@with_appcontext
def serve_command(host: str, port: int) -> None:
    """Serve the pages and the API and run the scheduled jobs, in one process, until Ctrl-C or SIGTERM stops both.

    For trying ServiceHub (`make run`): Werkzeug's threaded development server, and the scheduler of `servicehub
    scheduler` in a thread beside it (it takes the same database lease, so a `servicehub scheduler` running too stands
    by). Production runs gunicorn and one `servicehub scheduler` apart (docs/deploy.md)."""
    from werkzeug.serving import make_server

    from servicehub.jobs.runner import run_scheduler

    app = current_app._get_current_object()
    try:
        server = make_server(host, port, app, threaded=True)
    except OSError as exc:
        raise click.ClickException(f"Cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    logging.getLogger("apscheduler").setLevel(logging.WARNING)  # a line per job run drowns the requests
    stop = threading.Event()
    _stop_on_signals(stop)
    failed: list[BaseException] = []

    def jobs() -> None:
        try:
            run_scheduler(app, stop)
        except BaseException as exc:  # the scheduler failing stops the server too, loudly
            failed.append(exc)
            stop.set()
            raise

    web = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, name="web", daemon=True)
    scheduler = threading.Thread(target=jobs, name="scheduler", daemon=True)
    web.start()
    scheduler.start()
    click.echo(f" * ServiceHub on http://{host}:{server.server_port}/ and its scheduled jobs (late and missed visits, "
               "alerts, escalation, reminders); Ctrl-C stops both")
    while not stop.wait(0.5):
        pass
    click.echo(" * Stopping: the web server, then the jobs (the scheduler gives its lease up)")
    server.shutdown()
    server.server_close()
    scheduler.join(timeout=60)
    if failed:
        raise click.ClickException(f"The scheduler stopped: {type(failed[0]).__name__}: {failed[0]}")
    if scheduler.is_alive():
        raise click.ClickException("The scheduler did not stop within 60 s")
    click.echo(" * Stopped")
