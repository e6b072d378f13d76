"""The scheduler process: `servicehub scheduler`. Only the process holding the lease runs jobs.

Run one `servicehub scheduler` beside the web processes (gunicorn workers never start a scheduler).
If a second one is started by mistake, or the first dies, the lease in the database decides: the
holder renews it every few seconds; another process takes over only once it has expired.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from datetime import timedelta

from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from servicehub.database import IMMEDIATE, utcnow
from servicehub.extensions import db
from servicehub.jobs import tasks
from servicehub.jobs.models import SchedulerLease

log = logging.getLogger(__name__)

LEASE_SECONDS = 30
RENEW_SECONDS = 5


def holder_name() -> str:
    """This process, as the lease names it."""
    return f"{socket.gethostname()}:{os.getpid()}"


def take_lease(holder: str, seconds: int = LEASE_SECONDS) -> bool:
    """Take or renew the lease; False while another live process holds it."""
    now = utcnow()
    expires = now + timedelta(seconds=seconds)
    taken = db.session.execute(
        update(SchedulerLease).where(SchedulerLease.id == 1,
                                     or_(SchedulerLease.holder == holder, SchedulerLease.expires_at < now))
        .values(holder=holder, expires_at=expires)
    ).rowcount
    if not taken and db.session.scalar(select(SchedulerLease.id).where(SchedulerLease.id == 1)) is None:
        try:
            db.session.execute(insert(SchedulerLease).values(id=1, holder=holder, expires_at=expires))
            taken = 1
        except IntegrityError:
            db.session.rollback()
            return False
    db.session.commit()
    return bool(taken)


def release_lease(holder: str) -> None:
    """Give the lease up at a clean shutdown, so that another process need not wait for it to expire."""
    db.session.execute(update(SchedulerLease).where(SchedulerLease.holder == holder)
                       .values(expires_at=utcnow() - timedelta(seconds=1)))
    db.session.commit()


def job_store(engine=None, *, url: str | None = None) -> SQLAlchemyJobStore:
    """The scheduler's persistent job store on the database (an engine's or a URL's): its table, `apscheduler_jobs`,
    is made on the scheduler's first start, or beforehand by `servicehub db grant-app-role` (the app's role may not
    create tables)."""
    return SQLAlchemyJobStore(engine=engine, url=url, tablename="apscheduler_jobs")


def build_scheduler(app) -> BackgroundScheduler:
    """APScheduler with a persistent job store on the app's database, and ServiceHub's jobs."""
    scheduler = BackgroundScheduler(
        jobstores={"default": job_store(url=app.config["SQLALCHEMY_DATABASE_URI"]),
                   "once": MemoryJobStore()},  # slots to run again after a crash: not kept across restarts
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 3600},
        timezone=app.config["SERVICEHUB_TIMEZONE"],
    )
    zone = app.config["SERVICEHUB_TIMEZONE"]  # a trigger made here keeps its own zone, not the scheduler's
    # The interval jobs run first at the start, not one interval later: what came due while no scheduler ran (late
    # and missed visits, overdue applications) is found at once. Their slots still make each run once.
    now = utcnow()
    scheduler.add_job("servicehub.jobs.tasks:detect_visits", IntervalTrigger(
        seconds=app.config["SERVICEHUB_DETECT_SECONDS"]), id="detect_visits", replace_existing=True, next_run_time=now)
    scheduler.add_job("servicehub.jobs.tasks:nightly_generation", CronTrigger(hour=1, minute=0, timezone=zone),
                      id="nightly_generation", replace_existing=True)
    scheduler.add_job("servicehub.jobs.tasks:daily_alerts", CronTrigger(hour=6, minute=0, timezone=zone),
                      id="daily_alerts", replace_existing=True)
    scheduler.add_job("servicehub.jobs.tasks:monthly_close", CronTrigger(day=1, hour=2, minute=30, timezone=zone),
                      id="monthly_close", replace_existing=True)
    scheduler.add_job("servicehub.jobs.tasks:escalate_applications", IntervalTrigger(seconds=tasks.ESCALATION_SECONDS),
                      id="escalate_applications", replace_existing=True, next_run_time=now)
    scheduler.add_job("servicehub.jobs.tasks:active_discovery", CronTrigger(hour=5, minute=30, timezone=zone),
                      id="active_discovery", replace_existing=True)
    scheduler.add_job("servicehub.jobs.tasks:application_reminders", CronTrigger(hour=8, minute=0, timezone=zone),
                      id="application_reminders", replace_existing=True)
    # After the month's close (02:30 on the 1st), so that the checkpoint holds the frozen reports it issued.
    scheduler.add_job("servicehub.jobs.tasks:nightly_checkpoint", CronTrigger(hour=3, minute=15, timezone=zone),
                      id="nightly_checkpoint", replace_existing=True)
    return scheduler


def resume_interrupted(scheduler: BackgroundScheduler, holder: str) -> list[str]:
    """Run again, now, each slot a process that died in the middle of it left running; their ids."""
    interrupted = tasks.interrupted_runs(holder)
    # End the read first: on SQLite this thread's transaction holds the write lock (BEGIN IMMEDIATE), and the
    # scheduler's own thread may be writing to its job store while it holds the lock `add_job` waits for.
    db.session.commit()
    ids = []
    for job_id, slot in interrupted:
        if not callable(getattr(tasks, job_id, None)):
            continue
        ids.append(f"resume:{job_id}:{slot.isoformat()}")
        log.warning("scheduler %s resumes %s of slot %s", holder, job_id, slot.isoformat())
        scheduler.add_job(f"servicehub.jobs.tasks:{job_id}", "date", run_date=utcnow(), kwargs={"slot": slot},
                          id=ids[-1], jobstore="once", replace_existing=True, misfire_grace_time=None)
    return ids


def run_scheduler(app, stop: threading.Event, holder: str | None = None) -> None:
    """Hold the lease and run the jobs until `stop` is set; stand by while another process holds it."""
    holder = holder or holder_name()
    tasks.APP, tasks.HOLDER = app, holder
    IMMEDIATE.set(True)
    scheduler = None
    with app.app_context():
        try:
            while not stop.is_set():
                if take_lease(holder):
                    if scheduler is None:
                        log.info("scheduler %s holds the lease; running jobs", holder)
                        scheduler = build_scheduler(app)
                        scheduler.start()
                        resume_interrupted(scheduler, holder)
                elif scheduler is not None:
                    log.warning("scheduler %s lost the lease; standing by", holder)
                    scheduler.shutdown(wait=True)
                    scheduler = None
                stop.wait(RENEW_SECONDS)
        finally:
            if scheduler is not None:
                scheduler.shutdown(wait=True)
                release_lease(holder)
            db.session.remove()
