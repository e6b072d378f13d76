"""The jobs themselves, importable as `module:function` for APScheduler's persistent job store.

Each job runs for a time slot at most once (a unique row in `job_runs`), so a job fired twice — two
scheduler processes, or a restart — does its work once, and a slot missed while no scheduler ran is
caught up once (coalesced) when one starts. A slot whose process died in the middle of its work (the row
left `running` by a holder that no longer holds the lease) is taken over and run again by the next holder
when it starts (`interrupted_runs`): its work was rolled back with the dead process's transaction, and every
job is written to be safe to run again.
"""

from __future__ import annotations

import logging
import math
from datetime import UTC, datetime

from sqlalchemy import select, update
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


def run_in_slot(job_id: str, seconds: int, work, slot: datetime | None = None) -> bool:
    """Run `work()` for the current slot (or `slot`, resuming it) unless that slot already ran; True if it ran
    now."""
    IMMEDIATE.set(True)  # this job thread writes beside the web processes (SQLite: take the lock at BEGIN)
    with APP.app_context():
        run = _claim(job_id, slot or slot_of(utcnow(), seconds))
        if run is None:
            return False
        try:
            result = work() or {}
            run.status, run.result = "done", {k: v for k, v in result.items() if isinstance(v, (int, str, float))}
            if any(run.result.values()):
                log.info("job %s: %s", job_id, ", ".join(f"{k} {v}" for k, v in run.result.items()))
        except Exception as exc:  # a failed job is recorded, and the scheduler goes on
            log.exception("job %s failed", job_id)
            db.session.rollback()
            run = db.session.get(JobRun, run.id)
            run.status, run.error = "failed", f"{type(exc).__name__}: {exc}"[:2000]
        run.finished_at = utcnow()
        db.session.commit()
        db.session.remove()
        return True


def _claim(job_id: str, slot: datetime) -> JobRun | None:
    """The slot's row, now this process's: a new one, or one left running by a process that died in its middle
    (only the lease holder runs jobs, so another holder's running row is a dead process's); None if the slot ran
    or runs here already."""
    run = JobRun(job_id=job_id, slot=slot, holder=HOLDER)
    db.session.add(run)
    try:
        db.session.commit()
        return run
    except IntegrityError:
        db.session.rollback()
    taken = db.session.execute(
        update(JobRun).where(JobRun.job_id == job_id, JobRun.slot == slot, JobRun.status == "running",
                             JobRun.holder != HOLDER)
        .values(holder=HOLDER, started_at=utcnow())).rowcount
    db.session.commit()
    if not taken:
        return None
    log.warning("job %s: taking over slot %s, interrupted in another process", job_id, slot.isoformat())
    return db.session.scalars(select(JobRun).where(JobRun.job_id == job_id, JobRun.slot == slot)).one()


def interrupted_runs(holder: str) -> list[tuple[str, datetime]]:
    """(job id, slot) of the runs another process left running: to be run again by `holder`, the new lease
    holder, when it starts."""
    return list(db.session.execute(select(JobRun.job_id, JobRun.slot).where(
        JobRun.status == "running", JobRun.holder != holder).order_by(JobRun.slot)).tuples())


def detect_visits(slot: datetime | None = None) -> None:
    """Late and missed visits, and their alerts."""
    from servicehub.visits.services import detect_late_and_missed

    run_in_slot("detect_visits", APP.config["SERVICEHUB_DETECT_SECONDS"], detect_late_and_missed, slot)


def nightly_generation(slot: datetime | None = None) -> None:
    """Visits over the rolling horizon for every organisation; tomorrow planned for those who opted in."""
    from servicehub.auth.audit import Actor, acting_as
    from servicehub.auth.permissions import COMMAND_LINE
    from servicehub.scheduling.services import generate_visits, nightly_plans

    def work():
        with acting_as(Actor("scheduler")):
            report = generate_visits(COMMAND_LINE)
            plans = nightly_plans()
        return {"created": report.created, "cancelled": report.cancelled, **plans}

    run_in_slot("nightly_generation", 24 * 3600, work, slot)


def daily_alerts(slot: datetime | None = None) -> None:
    """Contract lines and budgets past 80% and 100%, contracts ending and certificates expiring soon."""
    from servicehub.visits.services import daily_contract_alerts

    run_in_slot("daily_alerts", 24 * 3600, daily_contract_alerts, slot)


def monthly_close(slot: datetime | None = None) -> None:
    """On the 1st: freeze last month's report of every contract, score the organisations."""
    from servicehub.auth.audit import Actor, acting_as
    from servicehub.auth.permissions import Principal, Role
    from servicehub.evaluation.services import monthly_close as close

    def work():
        with acting_as(Actor("scheduler")):
            return close(Principal(user_id=None, username="scheduler", role=Role.ADMIN))

    run_in_slot("monthly_close", 24 * 3600, work, slot)


def nightly_checkpoint(slot: datetime | None = None) -> None:
    """A signed checkpoint of every chain head, frozen report and the audit log's head, for auditors to copy away."""
    from servicehub.auth.audit import Actor, acting_as
    from servicehub.integrity.services import take_checkpoint

    def work():
        with acting_as(Actor("scheduler")):
            taken = take_checkpoint()
        return {"file": taken["file"], "records": taken["records"], "frozen_reports": taken["frozen_reports"]}

    run_in_slot("nightly_checkpoint", 24 * 3600, work, slot)


ESCALATION_SECONDS = 300


def escalate_applications(slot: datetime | None = None) -> None:
    """Every five minutes: applications nobody contacted by their deadline go to the district."""
    from servicehub.intake.services import escalate_overdue

    run_in_slot("escalate_applications", ESCALATION_SECONDS, lambda: {"escalated": escalate_overdue()}, slot)


def application_reminders(slot: datetime | None = None) -> None:
    """Daily: remind of documents owed after emergency help, until they are in or the case is closed."""
    from servicehub.intake.services import remind_documents

    run_in_slot("application_reminders", 24 * 3600, lambda: {"reminded": remind_documents()}, slot)


def active_discovery(slot: datetime | None = None) -> None:
    """Daily: the discovery rules file work-queue items for people at risk who did not apply."""
    from servicehub.auth.audit import Actor, acting_as
    from servicehub.intake.services import run_discovery

    def work():
        with acting_as(Actor("scheduler")):
            return {"filed": len(run_discovery())}

    run_in_slot("active_discovery", 24 * 3600, work, slot)
