"""phones encrypted at rest, found by a keyed hash

The phones of people — a recipient's and their family carer's, a worker's, an applicant's and their contact's —
were plain text. Each becomes three columns, as the ID number is: `<name>_encrypted` (AES-GCM under the data key),
`<name>_hash` (a keyed hash of the number without spaces, dashes or +86: how it is found again) and
`<name>_masked` (138****5678). Existing numbers are encrypted here a batch at a time, with the data key the app
itself uses (SERVICEHUB_DATA_KEY, else instance/data_key: `create_app` reads it; migrations run inside the app),
and the plain columns are dropped. None of these tables is append-only.

On SQLite the columns are added and dropped in place (ALTER TABLE ... ADD / DROP COLUMN, SQLite 3.35+), not by a
batch copy: a copy would drop and recreate tables that others point at (needs, visits, application steps …).

Revision ID: 0019_encrypted_phones
Revises: 0018_chained_audit_log
Create Date: 2026-12-08 10:00:00

"""
import re

import sqlalchemy as sa
from alembic import op
from flask import current_app

from servicehub import crypto

revision = '0019_encrypted_phones'
down_revision = '0018_chained_audit_log'
branch_labels = None
depends_on = None

PHONES = {"recipients": ("phone", "family_carer_phone"), "workers": ("phone",),
          "applications": ("phone", "contact_phone")}
BATCH = 2000


# As servicehub.registry.phones at this revision (a migration does not follow later code).
def _digits(value):
    text = re.sub(r"[\s\-()]", "", value)
    for prefix in ("+86", "0086"):
        if text.startswith(prefix):
            return text[len(prefix):]
    return text


def _sealed(key, name, value):
    value = (value or "").strip()
    if not value:
        return {f"{name}_encrypted": "", f"{name}_hash": None, f"{name}_masked": ""}
    number = _digits(value)
    return {f"{name}_encrypted": crypto.encrypt(key, value),
            f"{name}_hash": crypto.lookup_hash(key, f"phone:{number}") if number else None,
            f"{name}_masked": value[:3] + "****" + value[-4:] if len(value) >= 7 else "***"}


def _table(name, columns):
    return sa.table(name, sa.column('id', sa.Integer()), *(sa.column(c, sa.String()) for c in columns))


def _rewrite(table_name, read, written, compute):
    """Every row of the table holding a number, a batch at a time in order of id: the `written` columns set to
    `compute(row)`."""
    bind = op.get_bind()
    table = _table(table_name, read + written)
    update = sa.update(table).where(table.c.id == sa.bindparam('row_id')).values(
        {c: sa.bindparam(f'new_{c}') for c in written})
    last_id = 0
    while True:
        rows = bind.execute(sa.select(table.c.id, *(table.c[c] for c in read)).where(table.c.id > last_id)
                            .order_by(table.c.id).limit(BATCH)).mappings().all()
        if not rows:
            return
        last_id = rows[-1]['id']
        changes = [{'row_id': row['id'], **{f'new_{c}': v for c, v in compute(row).items()}}
                   for row in rows if any(row[c] for c in read)]
        if changes:
            bind.execute(update, changes)


def upgrade():
    key = current_app.config["SERVICEHUB_DATA_KEY"]
    for table, names in PHONES.items():
        for name in names:
            op.add_column(table, sa.Column(f'{name}_encrypted', sa.String(length=255), server_default='',
                                           nullable=False))
            op.add_column(table, sa.Column(f'{name}_hash', sa.String(length=64), nullable=True))
            op.add_column(table, sa.Column(f'{name}_masked', sa.String(length=20), server_default='', nullable=False))

        columns = tuple(f'{n}_{part}' for n in names for part in ('encrypted', 'hash', 'masked'))
        _rewrite(table, names, columns,
                 lambda row, names=names: {k: v for n in names for k, v in _sealed(key, n, row[n]).items()})
        for name in names:
            op.create_index(op.f(f'ix_{table}_{name}_hash'), table, [f'{name}_hash'], unique=False)
            op.drop_column(table, name)


def downgrade():
    key = current_app.config["SERVICEHUB_DATA_KEY"]
    dialect = op.get_bind().dialect.name
    for table, names in PHONES.items():
        for name in names:
            op.add_column(table, sa.Column(name, sa.String(length=20), server_default='', nullable=False))

        _rewrite(table, tuple(f'{n}_encrypted' for n in names), names,
                 lambda row, names=names: {n: crypto.decrypt(key, row[f'{n}_encrypted']) if row[f'{n}_encrypted']
                                           else '' for n in names})
        for name in names:
            if dialect == 'postgresql':  # as it was: no server default (SQLite cannot drop one in place)
                op.alter_column(table, name, server_default=None)
            op.drop_index(op.f(f'ix_{table}_{name}_hash'), table_name=table)
            for part in ('masked', 'hash', 'encrypted'):
                op.drop_column(table, f'{name}_{part}')
