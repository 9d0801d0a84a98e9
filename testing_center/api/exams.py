"""The exam catalogue."""

from __future__ import annotations

from flask_babel import get_locale

from exam_templates.services import CatalogueEntry, catalogue
from testing_center.api.blueprint import Blueprint
from testing_center.api.schemas import ExamSchema
from testing_center.attempts.presenters import localized, scoring_titles
from testing_center.extensions import db

blp = Blueprint("exams", __name__, url_prefix="/api/v1/exams", description="Exam catalogue")


def exam_payload(entry: CatalogueEntry, locale: str) -> dict:
    """Return the public description of one catalogue entry."""
    blueprint = entry.blueprint
    titles = scoring_titles(blueprint, locale)
    return {
        "code": blueprint.code,
        "version": blueprint.version,
        "title": localized(blueprint.title, locale),
        "description": localized(blueprint.description, locale) or None,
        "modes": list(blueprint.modes),
        "clock": blueprint.clock,
        "duration_seconds": blueprint.duration_seconds,
        "item_count": blueprint.item_count,
        "navigation": blueprint.navigation,
        "sections": [
            {
                "code": s.code,
                "title": localized(s.title, locale),
                "item_count": s.count,
                "duration_seconds": s.duration_seconds,
            }
            for s in blueprint.sections
        ],
        "scoring_sections": [
            {"code": code, "title": titles.get(code, code)} for code in blueprint.scoring_sections
        ],
        "scoring": blueprint.scoring.describe(),
        "available": entry.available,
        "unavailable_reason": entry.unavailable_reason,
    }


@blp.route("")
@blp.response(200, ExamSchema(many=True))
def list_exams():
    """List exam templates with modes, sections, scale, pass rule and availability."""
    locale = str(get_locale())
    return [exam_payload(entry, locale) for entry in catalogue(db.session)]
