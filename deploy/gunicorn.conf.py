"""gunicorn settings for ServiceHub (docs/deploy.md). Every value can be overridden on the command line or by
GUNICORN_CMD_ARGS."""

import multiprocessing
import os

bind = os.environ.get("SERVICEHUB_BIND", "127.0.0.1:8000")  # behind nginx on the same machine
# Synchronous workers: the app holds no state between requests, so any number of them (and of machines) share
# one PostgreSQL. Two per core plus one is gunicorn's own rule of thumb.
workers = int(os.environ.get("SERVICEHUB_WORKERS", multiprocessing.cpu_count() * 2 + 1))
timeout = 120  # a district-wide spreadsheet import or an XLSX of a month's records takes tens of seconds
graceful_timeout = 30
# The app is built once, in the master, and each worker is a fork of it: a worker starts in milliseconds instead of
# the 1.5 s of CPU that building the app takes, which matters on 2 cores when workers are recycled under load.
preload_app = True
max_requests = 10000  # recycle workers now and then (memory): at 200 requests/s over 5 workers, every few minutes
max_requests_jitter = 1000
accesslog = "-"
errorlog = "-"
forwarded_allow_ips = os.environ.get("SERVICEHUB_FORWARDED_ALLOW_IPS", "127.0.0.1")


def post_fork(server, worker):
    """Database connections the master may have opened while building the app are the master's: each worker
    opens its own (SQLAlchemy's advice for forked processes)."""
    from servicehub.extensions import db

    with server.app.callable.app_context():
        for engine in db.engines.values():
            engine.dispose(close=False)
