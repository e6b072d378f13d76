"""`servicehub intake …`: run the discovery rules, escalate overdue applications, remind of missing documents
(what the scheduler does, by hand); `servicehub demo applications`: a few applications in the demo's queues."""

from __future__ import annotations

import click

from servicehub.cli import app_command, demo_cli


@click.group("intake")
def intake_cli() -> None:
    """Applications for help (申请救助)."""


@intake_cli.command("discover")
@app_command
def discover_command() -> None:
    """Run the enabled discovery rules now: a work-queue item for each person at risk."""
    from servicehub.intake.services import run_discovery

    filed = run_discovery()
    click.echo(f"{len(filed)} items filed by active discovery")
    for application in filed:
        click.echo(f"  {application.reference} {application.rule_code} recipient {application.recipient_id}")


@intake_cli.command("escalate")
@app_command
def escalate_command() -> None:
    """Escalate every application nobody contacted by its deadline."""
    from servicehub.intake.services import escalate_overdue

    click.echo(f"{escalate_overdue()} applications escalated to the district")


@intake_cli.command("remind")
@app_command
def remind_command() -> None:
    """Remind of the documents owed after emergency help that are due soon or overdue."""
    from servicehub.intake.services import remind_documents

    click.echo(f"{remind_documents()} missing documents reminded")


DEMO_APPLICATIONS = (
    # (source, urgency, town index, name, phone, situation, service types, help text, step)
    ("public", "emergency", 0, "周桂英", "13805110001", "昨夜家中失火，厨房烧毁，独居，无法做饭。", ["LC01", "LC02"], "", None),
    ("hotline", "normal", 1, "陈国强", "13805110002", "12345热线转来：老伴住院，本人行动不便，需要有人帮忙打扫和陪同就医。",
     ["LC02", "RH04"], "", "contacted"),
    ("grid", "normal", 2, "李小雨", "13805110003", "网格员走访发现：父母外出务工，孩子由年迈的奶奶照看，学习跟不上。",
     ["CD01", "CD02"], "", "visited"),
    ("phone", "normal", 3, "王建华", "13805110004", "家属来电：父亲中风后卧床，母亲一人照顾，十分疲惫。", [],
     "希望有人上门帮忙半天，让母亲休息一下。", None),
)


@demo_cli.command("applications")
@app_command
def demo_applications_command() -> None:
    """A few applications in the demo's work queues, and what active discovery finds (once: nothing is filed
    when the demo already has applications)."""
    from sqlalchemy import select

    from servicehub.auth.permissions import COMMAND_LINE
    from servicehub.extensions import db
    from servicehub.intake.models import Application, Source
    from servicehub.intake.services import file_demo_application, record_step, run_discovery
    from servicehub.registry.services import list_towns

    if db.session.scalar(select(Application.id).limit(1)) is not None:
        click.echo("The demo already has applications: nothing filed.")
        return
    towns = list_towns()
    for source, urgency, town, name, phone, situation, types, help_text, step in DEMO_APPLICATIONS:
        data = {"name": name, "phone": phone, "area": towns[town % len(towns)].code, "situation": situation,
                "service_types": types, "help_text": help_text, "urgency": urgency, "address": ""}
        application = file_demo_application(data, Source(source))
        if step:
            record_step(COMMAND_LINE, application.id, step, "演示数据 demo")
    found = run_discovery()
    click.echo(f"{len(DEMO_APPLICATIONS)} demo applications filed; active discovery found {len(found)} more")
