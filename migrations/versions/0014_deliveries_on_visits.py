"""the deliveries in force on the visit rows, in the report index (reports join no table for them)

`deliveries_in_force` held one row per delivered visit; a district month's report looked up 110,000 of them by
visit id. Its columns move onto `visits` (`delivery_*`), rebuilt from the ledger here, and `ix_visits_report`
holds them too, so a report reads one index entry per visit.

Revision ID: 0014_deliveries_on_visits
Revises: 0013_application_alerts
Create Date: 2026-11-30 06:30:00

"""
from alembic import op
import sqlalchemy as sa

from servicehub.visits.deliveries import rebuild_deliveries


revision = '0014_deliveries_on_visits'
down_revision = '0013_application_alerts'
branch_labels = None
depends_on = None

OLD_REPORT_COLUMNS = ['service_date', 'status', 'organisation_id', 'referral_id', 'service_type_id', 'worker_id',
                      'recipient_id', 'duration_min', 'travel_min']
FIGURES = [('record_id', sa.Integer()), ('late_s', sa.Float()), ('service_s', sa.Float()), ('submit_s', sa.Float()),
           ('satisfaction', sa.Integer()), ('exception', sa.Boolean()), ('corrected', sa.Boolean())]
DELIVERY_COLUMNS = [f'delivery_{name}' for name, _ in FIGURES]


def upgrade():
    for name, type_ in FIGURES:
        op.add_column('visits', sa.Column(f'delivery_{name}', type_, nullable=True))
    rebuild_deliveries(op.get_bind())
    op.drop_index('ix_visits_report', table_name='visits')
    op.create_index('ix_visits_report', 'visits', OLD_REPORT_COLUMNS + DELIVERY_COLUMNS, unique=False)
    op.drop_table('deliveries_in_force')


def downgrade():
    op.create_table('deliveries_in_force',
    sa.Column('visit_id', sa.Integer(), nullable=False),
    sa.Column('record_id', sa.Integer(), nullable=False),
    sa.Column('late_s', sa.Float(), nullable=True),
    sa.Column('service_s', sa.Float(), nullable=False),
    sa.Column('submit_s', sa.Float(), nullable=True),
    sa.Column('satisfaction', sa.Integer(), nullable=True),
    sa.Column('exception', sa.Boolean(), nullable=False),
    sa.Column('corrected', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['record_id'], ['service_records.id'], name=op.f('fk_deliveries_in_force_record_id_service_records')),
    sa.ForeignKeyConstraint(['visit_id'], ['visits.id'], name=op.f('fk_deliveries_in_force_visit_id_visits')),
    sa.PrimaryKeyConstraint('visit_id', name=op.f('pk_deliveries_in_force'))
    )
    op.execute("INSERT INTO deliveries_in_force (visit_id, " + ", ".join(name for name, _ in FIGURES) + ") SELECT id, "
               + ", ".join(DELIVERY_COLUMNS) + " FROM visits WHERE delivery_record_id IS NOT NULL")
    op.drop_index('ix_visits_report', table_name='visits')
    op.create_index('ix_visits_report', 'visits', OLD_REPORT_COLUMNS, unique=False)
    with op.batch_alter_table('visits', schema=None) as batch_op:
        for column in reversed(DELIVERY_COLUMNS):
            batch_op.drop_column(column)
