"""GET /healthz: is the app up and can it reach its database (and at which schema revision)."""

from flask import Blueprint, jsonify
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from servicehub.auth.access import public
from servicehub.extensions import db

blp = Blueprint("health", __name__)


def database_status() -> dict:
    """Ping the database and read the Alembic revision it is at."""
    try:
        db.session.execute(text("SELECT 1"))
        revision = db.session.execute(text("SELECT version_num FROM alembic_version")).scalar()
        return {"status": "ok", "revision": revision}
    except SQLAlchemyError as exc:
        db.session.rollback()
        return {"status": "unavailable", "error": type(exc).__name__}


@blp.get("/healthz")
@public
def healthz():
    """Report the app's and the database's status; 503 if the database is unreachable."""
    database = database_status()
    healthy = database["status"] == "ok"
    return jsonify(status="ok" if healthy else "degraded", database=database), (200 if healthy else 503)
