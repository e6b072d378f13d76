"""an alert kind for documents still missing from a case helped at once (先救助后补材料)

Revision ID: 0016_documents_due_alerts
Revises: 0015_working_calendar
Create Date: 2026-11-30 07:10:00

"""
from alembic import op


revision = '0016_documents_due_alerts'
down_revision = '0015_working_calendar'
branch_labels = None
depends_on = None

KINDS = ('late', 'missed', 'missed_streak', 'line_80', 'line_100', 'budget_80', 'budget_100', 'contract_ending',
         'qualification_expiring', 'application_overdue')
ADDED = ('documents_due',)


def _replace_check(kinds) -> None:
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_alerts_kind'), type_='check')
        batch_op.create_check_constraint(op.f('ck_alerts_kind'), "kind IN (" + ", ".join(f"'{k}'" for k in kinds) + ")")


def upgrade():
    _replace_check(KINDS + ADDED)


def downgrade():
    op.execute("DELETE FROM alerts WHERE kind IN (" + ", ".join(f"'{kind}'" for kind in ADDED) + ")")
    _replace_check(KINDS)
