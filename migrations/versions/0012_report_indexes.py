"""visit indexes that reports read without touching the rows

A district month's report reads about 110,000 visits: from `ix_visits_report` it reads every column it needs in
date order, where before each visit's row was fetched from the table. A need's first delivery is the earliest
completed visit of each of its referrals: one step into `ix_visits_referral_status_date`, which also serves
every lookup by referral that `ix_visits_referral_id` served.

Revision ID: 0012_report_indexes
Revises: 0011_application_run
Create Date: 2026-11-30 04:10:00

"""
from alembic import op


revision = '0012_report_indexes'
down_revision = '0011_application_run'
branch_labels = None
depends_on = None

REPORT_COLUMNS = ['service_date', 'status', 'organisation_id', 'referral_id', 'service_type_id', 'worker_id',
                  'recipient_id', 'duration_min', 'travel_min']


def upgrade():
    op.create_index('ix_visits_report', 'visits', REPORT_COLUMNS, unique=False)
    op.drop_index('ix_visits_date_status', table_name='visits')
    op.create_index('ix_visits_referral_status_date', 'visits', ['referral_id', 'status', 'service_date'], unique=False)
    op.drop_index('ix_visits_referral_id', table_name='visits')


def downgrade():
    op.create_index('ix_visits_referral_id', 'visits', ['referral_id'], unique=False)
    op.drop_index('ix_visits_referral_status_date', table_name='visits')
    op.create_index('ix_visits_date_status', 'visits', ['service_date', 'status'], unique=False)
    op.drop_index('ix_visits_report', table_name='visits')
