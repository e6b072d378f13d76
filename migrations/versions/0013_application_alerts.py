"""an alert kind for applications nobody got in touch with by their deadline

Revision ID: 0013_application_alerts
Revises: 0012_report_indexes
Create Date: 2026-11-30 05:25:00

"""
from alembic import op


revision = '0013_application_alerts'
down_revision = '0012_report_indexes'
branch_labels = None
depends_on = None

KINDS = ('late', 'missed', 'missed_streak', 'line_80', 'line_100', 'budget_80', 'budget_100', 'contract_ending',
         'qualification_expiring')
ADDED = ('application_overdue',)


def _kinds_check(kinds) -> str:
    return "kind IN (" + ", ".join(f"'{kind}'" for kind in kinds) + ")"


def _replace_check(kinds) -> None:
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_alerts_kind'), type_='check')
        batch_op.create_check_constraint(op.f('ck_alerts_kind'), _kinds_check(kinds))


def upgrade():
    _replace_check(KINDS + ADDED)


def downgrade():
    op.execute("DELETE FROM alerts WHERE kind IN (" + ", ".join(f"'{kind}'" for kind in ADDED) + ")")
    _replace_check(KINDS)
