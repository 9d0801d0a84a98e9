"""Stored media: images for everyone (named by content hash), audio only for staff.

Candidates hear recordings only through play grants (``api/attempts.py``), so a play
limit cannot be bypassed by fetching the file directly.
"""

from __future__ import annotations

import io

from flask import Blueprint, send_file
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.orm import undefer

from item_bank.models import Media
from testing_center.accounts.models import Role
from testing_center.errors import NotFound
from testing_center.extensions import db
from testing_center.i18n import N_

bp = Blueprint("media", __name__)
STAFF_WITH_AUDIO = {Role.AUTHOR, Role.ADMIN, Role.OPERATOR}
ONE_YEAR_SECONDS = 365 * 24 * 3600


@bp.route("/media/<sha256>")
def media(sha256: str):
    """Serve a stored file; contents never change under a hash, so caches may keep it."""
    row = db.session.scalar(
        select(Media).where(Media.sha256 == sha256).options(undefer(Media.data))
    )
    may_see = row is not None and (
        row.kind == "image"
        or (current_user.is_authenticated and current_user.role in STAFF_WITH_AUDIO)
    )
    if not may_see:
        raise NotFound(N_("There is no such file."), code="media_not_found")
    response = send_file(
        io.BytesIO(row.data),
        mimetype=row.mime_type,
        conditional=True,
        etag=row.sha256,
        max_age=ONE_YEAR_SECONDS,
    )
    if row.kind == "image":
        response.headers["Cache-Control"] = f"public, max-age={ONE_YEAR_SECONDS}, immutable"
    else:
        response.headers["Cache-Control"] = "private, no-store"
    return response
