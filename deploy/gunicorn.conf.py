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
max_requests = 2000  # recycle workers now and then (memory)
max_requests_jitter = 200
accesslog = "-"
errorlog = "-"
forwarded_allow_ips = os.environ.get("SERVICEHUB_FORWARDED_ALLOW_IPS", "127.0.0.1")
