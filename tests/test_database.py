"""Transactions behave the same on both engines."""

import sqlalchemy as sa

from servicehub.extensions import db
from servicehub.registry.models import Area


def test_a_released_savepoint_is_undone_by_the_outer_rollback(app_ctx):
    with db.session.begin_nested():
        db.session.add(Area(code="999999", name_zh="临时", level="district"))
    db.session.rollback()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Area)) == 0


def test_a_failed_savepoint_keeps_the_rest_of_the_transaction(app_ctx):
    db.session.add(Area(code="888888", name_zh="保留", level="district"))
    db.session.flush()
    try:
        with db.session.begin_nested():
            db.session.add(Area(code="888888", name_zh="重复", level="district"))
            db.session.flush()
    except sa.exc.IntegrityError:
        pass
    db.session.commit()
    assert [a.name_zh for a in db.session.scalars(sa.select(Area))] == ["保留"]
