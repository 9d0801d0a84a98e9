"""``GET /healthz``: is the process up and does the database answer."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from testing_center.api.blueprint import Blueprint
from testing_center.api.schemas import HealthSchema
from testing_center.extensions import db

blp = Blueprint("health", __name__, url_prefix="/healthz", description="Liveness")


@blp.route("")
@blp.response(200, HealthSchema)
@blp.alt_response(503, schema=HealthSchema)
def healthz():
    """Report whether the application and its database are up."""
    try:
        db.session.execute(text("SELECT 1"))
    except SQLAlchemyError:
        db.session.rollback()
        return {"status": "error", "database": "error"}, 503
    return {"status": "ok", "database": "ok"}
