"""visit verification exceptions, billing terms of contract lines, confirmation cards, bounded corrections

The exception queue (`evv_exceptions` and its append-only `evv_exception_steps`), each service type's duration
shares and longest stay, each contract line's billing terms, the settlement frozen with a month's report, the
recipients' confirmation cards and every refused code, the hash of the request that wrote a ledger entry, and
`visits.delivery_manual` in the report index. Existing records get their exceptions computed here: those of months
before the current one are waived (they were settled before the queue existed), the current month's are open.

Revision ID: 0017_evv_exceptions
Revises: 0016_documents_due_alerts
Create Date: 2026-12-07 11:00:00

"""
from alembic import op
import sqlalchemy as sa

from servicehub.database import append_only_ddl


revision = '0017_evv_exceptions'
down_revision = '0016_documents_due_alerts'
branch_labels = None
depends_on = None

CODES = ('late_start', 'early_end', 'late_end', 'short_visit', 'long_visit', 'far_check_in', 'far_check_out',
         'no_confirmation', 'code_failed', 'no_tasks', 'manual_entry', 'edited_times', 'late_submission', 'overlap',
         'missed', 'cancelled_late', 'frozen_month_correction')
ALERT_KINDS = ('late', 'missed', 'missed_streak', 'line_80', 'line_100', 'budget_80', 'budget_100', 'contract_ending',
               'qualification_expiring', 'application_overdue', 'documents_due')
ADDED_ALERTS = ('code_failed', 'card_reissued')
OLD_REPORT_COLUMNS = ['service_date', 'status', 'organisation_id', 'referral_id', 'service_type_id', 'worker_id',
                      'recipient_id', 'duration_min', 'travel_min', 'delivery_record_id', 'delivery_late_s',
                      'delivery_service_s', 'delivery_submit_s', 'delivery_satisfaction', 'delivery_exception',
                      'delivery_corrected']


def _in(values) -> str:
    return "(" + ", ".join(f"'{v}'" for v in values) + ")"


def _alert_check(kinds) -> None:
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_alerts_kind'), type_='check')
        batch_op.create_check_constraint(op.f('ck_alerts_kind'), "kind IN " + _in(kinds))


def upgrade():
    op.create_table('confirmation_cards',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('recipient_id', sa.Integer(), nullable=False),
    sa.Column('card_no', sa.Integer(), nullable=False),
    sa.Column('secret_encrypted', sa.String(length=255), nullable=False),
    sa.Column('printed_codes', sa.Integer(), nullable=False),
    sa.Column('printed_next', sa.Integer(), nullable=False),
    sa.Column('phone_steps', sa.JSON(), nullable=False),
    sa.Column('issued_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('issued_by_id', sa.Integer(), nullable=True),
    sa.Column('issued_by', sa.String(length=100), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['issued_by_id'], ['users.id'], name=op.f('fk_confirmation_cards_issued_by_id_users')),
    sa.ForeignKeyConstraint(['recipient_id'], ['recipients.id'], name=op.f('fk_confirmation_cards_recipient_id_recipients')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_confirmation_cards')),
    sa.UniqueConstraint('recipient_id', 'card_no', name=op.f('uq_confirmation_cards_recipient_id_card_no'))
    )
    op.create_index(op.f('ix_confirmation_cards_recipient_id'), 'confirmation_cards', ['recipient_id'], unique=False)

    op.create_table('confirmation_attempts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('visit_id', sa.Integer(), nullable=False),
    sa.Column('recipient_id', sa.Integer(), nullable=False),
    sa.Column('card_id', sa.Integer(), nullable=True),
    sa.Column('outcome', sa.String(length=10), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('username', sa.String(length=100), nullable=False),
    sa.Column('ip', sa.String(length=64), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("outcome IN ('wrong', 'expired', 'reused', 'no_card', 'locked')", name=op.f('ck_confirmation_attempts_outcome')),
    sa.ForeignKeyConstraint(['card_id'], ['confirmation_cards.id'], name=op.f('fk_confirmation_attempts_card_id_confirmation_cards')),
    sa.ForeignKeyConstraint(['recipient_id'], ['recipients.id'], name=op.f('fk_confirmation_attempts_recipient_id_recipients')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_confirmation_attempts_user_id_users')),
    sa.ForeignKeyConstraint(['visit_id'], ['visits.id'], name=op.f('fk_confirmation_attempts_visit_id_visits')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_confirmation_attempts'))
    )
    op.create_index('ix_confirmation_attempts_visit', 'confirmation_attempts', ['visit_id'], unique=False)

    op.create_table('evv_exceptions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('visit_id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('organisation_id', sa.Integer(), nullable=False),
    sa.Column('town_id', sa.Integer(), nullable=True),
    sa.Column('recipient_id', sa.Integer(), nullable=False),
    sa.Column('worker_id', sa.Integer(), nullable=True),
    sa.Column('service_date', sa.Date(), nullable=False),
    sa.Column('details', sa.JSON(), nullable=False),
    sa.Column('fingerprint', sa.String(length=64), nullable=False),
    sa.Column('raised_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('reason_code', sa.String(length=24), nullable=False),
    sa.Column('resolution_note', sa.Text(), nullable=False),
    sa.Column('resolved_by', sa.String(length=100), nullable=False),
    sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('decision_note', sa.Text(), nullable=False),
    sa.Column('decided_by', sa.String(length=100), nullable=False),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("code IN " + _in(CODES), name=op.f('ck_evv_exceptions_code')),
    sa.CheckConstraint("status IN ('open', 'resolved', 'approved', 'rejected', 'cleared', 'waived')", name=op.f('ck_evv_exceptions_status')),
    sa.ForeignKeyConstraint(['organisation_id'], ['organisations.id'], name=op.f('fk_evv_exceptions_organisation_id_organisations')),
    sa.ForeignKeyConstraint(['recipient_id'], ['recipients.id'], name=op.f('fk_evv_exceptions_recipient_id_recipients')),
    sa.ForeignKeyConstraint(['town_id'], ['areas.id'], name=op.f('fk_evv_exceptions_town_id_areas')),
    sa.ForeignKeyConstraint(['visit_id'], ['visits.id'], name=op.f('fk_evv_exceptions_visit_id_visits')),
    sa.ForeignKeyConstraint(['worker_id'], ['workers.id'], name=op.f('fk_evv_exceptions_worker_id_workers')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_evv_exceptions')),
    sa.UniqueConstraint('visit_id', 'code', name=op.f('uq_evv_exceptions_visit_id_code'))
    )
    op.create_index('ix_evv_exceptions_org_status', 'evv_exceptions', ['organisation_id', 'status', 'service_date'], unique=False)
    op.create_index('ix_evv_exceptions_town_status', 'evv_exceptions', ['town_id', 'status', 'service_date'], unique=False)
    op.create_index(op.f('ix_evv_exceptions_worker_id'), 'evv_exceptions', ['worker_id'], unique=False)

    op.create_table('evv_exception_steps',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('exception_id', sa.Integer(), nullable=False),
    sa.Column('action', sa.String(length=12), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('reason_code', sa.String(length=24), nullable=False),
    sa.Column('note', sa.Text(), nullable=False),
    sa.Column('details', sa.JSON(), nullable=False),
    sa.Column('by_id', sa.Integer(), nullable=True),
    sa.Column('by', sa.String(length=100), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['by_id'], ['users.id'], name=op.f('fk_evv_exception_steps_by_id_users')),
    sa.ForeignKeyConstraint(['exception_id'], ['evv_exceptions.id'], name=op.f('fk_evv_exception_steps_exception_id_evv_exceptions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_evv_exception_steps'))
    )
    op.create_index(op.f('ix_evv_exception_steps_exception_id'), 'evv_exception_steps', ['exception_id'], unique=False)
    for statement in append_only_ddl(op.get_bind().dialect.name, "evv_exception_steps")[0]:
        op.execute(statement)

    with op.batch_alter_table('contract_lines', schema=None) as batch_op:
        batch_op.add_column(sa.Column('billing', sa.String(length=8), server_default='visit', nullable=False))
        batch_op.add_column(sa.Column('billing_step_min', sa.Integer(), server_default='15', nullable=False))
        batch_op.add_column(sa.Column('min_billable_share', sa.Float(), server_default='0.5', nullable=False))
        batch_op.create_check_constraint(op.f('ck_contract_lines_billing'), "billing IN ('visit', 'minute')")
        batch_op.create_check_constraint(op.f('ck_contract_lines_billing_step'), "billing_step_min BETWEEN 1 AND 60")
        batch_op.create_check_constraint(op.f('ck_contract_lines_min_billable_share'),
                                         "min_billable_share BETWEEN 0 AND 1")
    # Hourly services were paid by the planned hours; what was verified is what they are paid now.
    op.execute("UPDATE contract_lines SET billing = 'minute' WHERE service_type_id IN "
               "(SELECT id FROM service_types WHERE unit = 'hour')")

    # Append-only tables (a trigger refuses updates): plain ADD COLUMN, never a batch copy that drops the trigger.
    op.add_column('frozen_reports', sa.Column('settlement', sa.JSON(), nullable=True))
    op.add_column('frozen_reports', sa.Column('open_exceptions', sa.Integer(), nullable=True))
    op.add_column('service_records', sa.Column('request_hash', sa.String(length=64), nullable=True))

    op.add_column('service_types', sa.Column('evv_short_share', sa.Float(), server_default='0.5', nullable=False))
    op.add_column('service_types', sa.Column('evv_long_share', sa.Float(), server_default='2.0', nullable=False))
    op.add_column('service_types', sa.Column('max_duration_min', sa.Integer(), server_default='480', nullable=False))
    # Three times the usual length, at least an hour and at most a day (the catalogue file sets each type's own).
    op.execute("UPDATE service_types SET max_duration_min = CASE WHEN default_duration_min >= 480 THEN 1440 "
               "WHEN default_duration_min < 20 THEN 60 ELSE 3 * default_duration_min END")
    # A meal is handed over at the door in minutes: a fifth of its planned quarter hour is not a short visit, and
    # the lines that buy meals pay it (the catalogue file says so too).
    op.execute("UPDATE service_types SET evv_short_share = 0.2, evv_long_share = 4.0 WHERE unit = 'meal'")
    op.execute("UPDATE contract_lines SET min_billable_share = 0.2 WHERE service_type_id IN "
               "(SELECT id FROM service_types WHERE unit = 'meal')")
    with op.batch_alter_table('service_types', schema=None) as batch_op:
        batch_op.create_check_constraint(op.f('ck_service_types_evv_shares'),
                                         "evv_short_share >= 0 AND evv_short_share <= evv_long_share")
        batch_op.create_check_constraint(op.f('ck_service_types_max_duration'),
                                         "max_duration_min >= default_duration_min")

    op.add_column('visits', sa.Column('delivery_manual', sa.Boolean(), nullable=True))
    op.drop_index('ix_visits_report', table_name='visits')
    op.create_index('ix_visits_report', 'visits', OLD_REPORT_COLUMNS + ['delivery_manual'], unique=False)

    _alert_check(ALERT_KINDS + ADDED_ALERTS)

    from servicehub.visits.verification import rebuild_exceptions
    rebuild_exceptions(op.get_bind(), waive_before_this_month=True)


def downgrade():
    op.execute("DELETE FROM alerts WHERE kind IN " + _in(ADDED_ALERTS))
    _alert_check(ALERT_KINDS)
    op.drop_index('ix_visits_report', table_name='visits')
    op.create_index('ix_visits_report', 'visits', OLD_REPORT_COLUMNS, unique=False)
    with op.batch_alter_table('visits', schema=None) as batch_op:
        batch_op.drop_column('delivery_manual')

    with op.batch_alter_table('service_types', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_service_types_max_duration'), type_='check')
        batch_op.drop_constraint(op.f('ck_service_types_evv_shares'), type_='check')
        batch_op.drop_column('max_duration_min')
        batch_op.drop_column('evv_long_share')
        batch_op.drop_column('evv_short_share')

    op.drop_column('service_records', 'request_hash')
    op.drop_column('frozen_reports', 'open_exceptions')
    op.drop_column('frozen_reports', 'settlement')

    with op.batch_alter_table('contract_lines', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_contract_lines_min_billable_share'), type_='check')
        batch_op.drop_constraint(op.f('ck_contract_lines_billing_step'), type_='check')
        batch_op.drop_constraint(op.f('ck_contract_lines_billing'), type_='check')
        batch_op.drop_column('min_billable_share')
        batch_op.drop_column('billing_step_min')
        batch_op.drop_column('billing')

    for statement in append_only_ddl(op.get_bind().dialect.name, "evv_exception_steps")[1]:
        op.execute(statement)
    op.drop_index(op.f('ix_evv_exception_steps_exception_id'), table_name='evv_exception_steps')
    op.drop_table('evv_exception_steps')
    op.drop_index(op.f('ix_evv_exceptions_worker_id'), table_name='evv_exceptions')
    op.drop_index('ix_evv_exceptions_town_status', table_name='evv_exceptions')
    op.drop_index('ix_evv_exceptions_org_status', table_name='evv_exceptions')
    op.drop_table('evv_exceptions')
    op.drop_index('ix_confirmation_attempts_visit', table_name='confirmation_attempts')
    op.drop_table('confirmation_attempts')
    op.drop_index(op.f('ix_confirmation_cards_recipient_id'), table_name='confirmation_cards')
    op.drop_table('confirmation_cards')
