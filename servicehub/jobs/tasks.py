"""The jobs themselves, importable as `module:function` for APScheduler's persistent job store.

Each job runs for a time slot at most once (a unique row in `job_runs`), so a job fired twice — two
scheduler processes, or a restart in the middle — does its work once, and a slot missed while no
scheduler ran is caught up once (coalesced) when one starts.
"""

from __future__ import annotations

import logging
import math
from datetime import UTC, datetime

from sqlalchemy.exc import IntegrityError

from servicehub.database import IMMEDIATE, utcnow
from servicehub.extensions import db
from servicehub.jobs.models import JobRun

log = logging.getLogger(__name__)

APP = None  # the Flask app the scheduler process runs the jobs in (set by servicehub.jobs.runner)
HOLDER = ""


def slot_of(moment: datetime, seconds: int) -> datetime:
    """The start of the `seconds`-long slot a moment falls in."""
    return datetime.fromtimestamp(math.floor(moment.timestamp() / seconds) * seconds, tz=UTC)


def run_in_slot(job_id: str, seconds: int, work) -> bool:
    """Run `work()` for the current slot unless that slot already ran; True if it ran now."""
    IMMEDIATE.set(True)  # this job thread writes beside the web processes (SQLite: take the lock at BEGIN)
    with APP.app_context():
        run = JobRun(job_id=job_id, slot=slot_of(utcnow(), seconds), holder=HOLDER)
        db.session.add(run)
        try:
            db.session.commit()
        except IntegrityError:
            db.session.rollback()
            return False
        try:
            result = work() or {}
            run.status, run.result = "done", {k: v for k, v in result.items() if isinstance(v, (int, str, float))}
        except Exception as exc:  # a failed job is recorded, and the scheduler goes on
            log.exception("job %s failed", job_id)
            db.session.rollback()
            run = db.session.get(JobRun, run.id)
            run.status, run.error = "failed", f"{type(exc).__name__}: {exc}"[:2000]
        run.finished_at = utcnow()
        db.session.commit()
        db.session.remove()
        return True


def detect_visits() -> None:
    """Late and missed visits, and their alerts."""
    from servicehub.visits.services import detect_late_and_missed

    run_in_slot("detect_visits", APP.config["SERVICEHUB_DETECT_SECONDS"], detect_late_and_missed)


def nightly_generation() -> None:
    """Visits over the rolling horizon for every organisation; tomorrow planned for those who opted in."""
    from servicehub.auth.audit import Actor, acting_as
    from servicehub.auth.permissions import COMMAND_LINE
    from servicehub.scheduling.services import generate_visits, nightly_plans

    def work():
        with acting_as(Actor("scheduler")):
            report = generate_visits(COMMAND_LINE)
            plans = nightly_plans()
        return {"created": report.created, "cancelled": report.cancelled, **plans}

    run_in_slot("nightly_generation", 24 * 3600, work)


def daily_alerts() -> None:
    """Contract lines and budgets past 80% and 100%, contracts ending and certificates expiring soon."""
    from servicehub.visits.services import daily_contract_alerts

    run_in_slot("daily_alerts", 24 * 3600, daily_contract_alerts)


def monthly_close() -> None:
    """On the 1st: freeze last month's report of every contract, score the organisations."""
    from servicehub.auth.audit import Actor, acting_as
    from servicehub.auth.permissions import Principal, Role
    from servicehub.evaluation.services import monthly_close as close

    def work():
        with acting_as(Actor("scheduler")):
            return close(Principal(user_id=None, username="scheduler", role=Role.ADMIN))

    run_in_slot("monthly_close", 24 * 3600, work)


ESCALATION_SECONDS = 300


def escalate_applications() -> None:
    """Every five minutes: applications nobody contacted by their deadline go to the district."""
    from servicehub.intake.services import escalate_overdue

    run_in_slot("escalate_applications", ESCALATION_SECONDS, lambda: {"escalated": escalate_overdue()})


def application_reminders() -> None:
    """Daily: remind of documents owed after emergency help, until they are in or the case is closed."""
    from servicehub.intake.services import remind_documents

    run_in_slot("application_reminders", 24 * 3600, lambda: {"reminded": remind_documents()})


def active_discovery() -> None:
    """Daily: the discovery rules file work-queue items for people at risk who did not apply."""
    from servicehub.auth.audit import Actor, acting_as
    from servicehub.intake.services import run_discovery

    def work():
        with acting_as(Actor("scheduler")):
            return {"filed": len(run_discovery())}

    run_in_slot("active_discovery", 24 * 3600, work)
