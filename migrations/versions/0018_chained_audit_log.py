"""the audit log hash-chained like the service records

Every audit-log row gets a sequence number, the hash of the row before it and its own hash
(`servicehub.auth.audit.AUDIT_HASHED_FIELDS`), so that a deleted, changed or reordered row breaks the chain and a
signed checkpoint (`servicehub audit checkpoint`) can pin its head outside the database. Existing rows are chained
here in the order they were written (by id).

Revision ID: 0018_chained_audit_log
Revises: 0017_evv_exceptions
Create Date: 2026-12-07 14:30:00

"""
import sqlalchemy as sa
from alembic import op

from servicehub.chain import GENESIS, link_hash
from servicehub.database import UTCDateTime, append_only_ddl

revision = '0018_chained_audit_log'
down_revision = '0017_evv_exceptions'
branch_labels = None
depends_on = None

# As servicehub.auth.audit.AUDIT_HASHED_FIELDS at this revision (a migration does not follow later code).
HASHED = ("sequence", "at", "actor_id", "actor", "action", "entity_type", "entity_id", "changes", "ip")
BATCH = 5000


def upgrade():
    bind = op.get_bind()
    dialect = bind.dialect.name
    # Append-only tables: plain ADD COLUMN (a batch copy would drop the trigger); the trigger is lifted only while
    # the existing rows are chained.
    op.add_column('audit_log', sa.Column('sequence', sa.BigInteger(), nullable=True))
    op.add_column('audit_log', sa.Column('prev_hash', sa.String(length=64), nullable=True))
    op.add_column('audit_log', sa.Column('hash', sa.String(length=64), nullable=True))
    for statement in append_only_ddl(dialect, "audit_log")[1]:
        op.execute(statement)
    log = sa.table('audit_log', sa.column('id', sa.BigInteger()), sa.column('at', UTCDateTime()),
                   sa.column('actor_id', sa.Integer()), sa.column('actor', sa.String()),
                   sa.column('action', sa.String()), sa.column('entity_type', sa.String()),
                   sa.column('entity_id', sa.String()), sa.column('changes', sa.JSON()),
                   sa.column('ip', sa.String()), sa.column('sequence', sa.BigInteger()),
                   sa.column('prev_hash', sa.String()), sa.column('hash', sa.String()))
    write = (sa.update(log).where(log.c.id == sa.bindparam('row_id'))
             .values(sequence=sa.bindparam('seq'), prev_hash=sa.bindparam('prev'), hash=sa.bindparam('own')))
    sequence, previous, last_id = 0, GENESIS, None
    while True:
        stmt = sa.select(log.c.id, log.c.at, log.c.actor_id, log.c.actor, log.c.action, log.c.entity_type,
                         log.c.entity_id, log.c.changes, log.c.ip).order_by(log.c.id).limit(BATCH)
        if last_id is not None:
            stmt = stmt.where(log.c.id > last_id)
        rows = bind.execute(stmt).mappings().all()
        if not rows:
            break
        updates = []
        for row in rows:
            sequence += 1
            own = link_hash({**row, "sequence": sequence}, HASHED, previous)
            updates.append({"row_id": row["id"], "seq": sequence, "prev": previous, "own": own})
            previous, last_id = own, row["id"]
        bind.execute(write, updates)
    op.create_index('ix_audit_log_sequence', 'audit_log', ['sequence'], unique=True)
    for statement in append_only_ddl(dialect, "audit_log")[0]:
        op.execute(statement)


def downgrade():
    dialect = op.get_bind().dialect.name
    op.drop_index('ix_audit_log_sequence', table_name='audit_log')
    for statement in append_only_ddl(dialect, "audit_log")[1]:
        op.execute(statement)
    op.drop_column('audit_log', 'hash')
    op.drop_column('audit_log', 'prev_hash')
    op.drop_column('audit_log', 'sequence')
    for statement in append_only_ddl(dialect, "audit_log")[0]:
        op.execute(statement)
