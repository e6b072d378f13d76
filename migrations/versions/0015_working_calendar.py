"""the district's working calendar: holidays and worked weekend days that intake deadlines count by

Revision ID: 0015_working_calendar
Revises: 0014_deliveries_on_visits
Create Date: 2026-11-30 07:00:00

"""
from alembic import op
import sqlalchemy as sa



revision = '0015_working_calendar'
down_revision = '0014_deliveries_on_visits'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('calendar_days',
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('kind', sa.String(length=10), nullable=False),
    sa.Column('name', sa.String(length=40), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_by', sa.String(length=100), nullable=False),
    sa.CheckConstraint("kind IN ('holiday', 'workday')", name=op.f('ck_calendar_days_kind')),
    sa.PrimaryKeyConstraint('day', name=op.f('pk_calendar_days'))
    )


def downgrade():
    op.drop_table('calendar_days')
