"""Review workflow: drafts, review by a second person, immutable approved versions."""

from __future__ import annotations

import datetime as dt

import pytest

from item_bank.bundle import Bundle
from item_bank.errors import WorkflowError
from item_bank.services import approved_pool, import_bundles
from item_bank.workflow import (
    approve,
    history,
    item_by_ref,
    retire,
    return_to_author,
    submit_for_review,
)
from testing_center.accounts.models import Role
from testing_center.extensions import db

from .test_item_bank import make_document

NOW = dt.datetime(2026, 11, 26, tzinfo=dt.UTC)


@pytest.fixture
def people(make_staff):
    return make_staff(Role.AUTHOR), make_staff(Role.AUTHOR)


def draft(document, author_id):
    return import_bundles(
        db.session, [Bundle(items=[document])], status="draft", now=NOW, actor_id=author_id
    )


def test_review_requires_a_second_person(app, people):
    """The author of a version cannot approve it; a second person can."""
    author, reviewer = people
    with app.app_context():
        draft(make_document(), author.id)
        item = item_by_ref(db.session, "t-001")
        submit_for_review(db.session, item, author.id, NOW)
        with pytest.raises(WorkflowError, match="second person"):
            approve(db.session, item, author.id, NOW)
        approve(db.session, item, reviewer.id, NOW)
        assert item.versions[-1].status == "approved"
        assert item.versions[-1].approved_by_id == reviewer.id
        assert [e.action for e in history(db.session, item)] == [
            "imported",
            "submitted",
            "approved",
        ]


def test_only_approved_versions_reach_exams(app, people):
    """Drafts and versions in review are never offered to form assembly."""
    author, reviewer = people
    with app.app_context():
        draft(make_document(), author.id)
        item = item_by_ref(db.session, "t-001")
        assert approved_pool(db.session, {}) == []
        submit_for_review(db.session, item, author.id, NOW)
        assert approved_pool(db.session, {}) == []
        approve(db.session, item, reviewer.id, NOW)
        assert [e.item_ref for e in approved_pool(db.session, {})] == ["t-001"]


def test_editing_approved_item_makes_new_version(app, people):
    """An approved version never changes: an edit becomes version 2, a draft, and exams
    keep showing version 1 until version 2 is approved."""
    author, reviewer = people
    with app.app_context():
        draft(make_document(), author.id)
        item = item_by_ref(db.session, "t-001")
        submit_for_review(db.session, item, author.id, NOW)
        approve(db.session, item, reviewer.id, NOW)
        first = item.versions[0]
        frozen = (dict(first.content), first.answer_key)
        draft(make_document(key="D"), author.id)
        draft(make_document(key="A"), author.id)  # editing the draft again: same version
        assert [(v.version_no, v.status) for v in item.versions] == [(1, "approved"), (2, "draft")]
        assert (first.content, first.answer_key) == frozen
        assert item.versions[1].answer_key == "A"
        assert approved_pool(db.session, {})[0].version_id == first.id


def test_return_needs_a_note_and_goes_back_to_draft(app, people):
    """A reviewer returns a version with a note; it is a draft again."""
    author, reviewer = people
    with app.app_context():
        draft(make_document(), author.id)
        item = item_by_ref(db.session, "t-001")
        submit_for_review(db.session, item, author.id, NOW)
        with pytest.raises(WorkflowError):
            return_to_author(db.session, item, reviewer.id, "  ", NOW)
        return_to_author(db.session, item, reviewer.id, "Distractor C is also correct.", NOW)
        assert item.versions[-1].status == "draft"
        assert history(db.session, item)[-1].note == "Distractor C is also correct."


def test_steps_out_of_order_refused(app, people):
    """Approving a draft, or submitting twice, is refused."""
    author, reviewer = people
    with app.app_context():
        draft(make_document(), author.id)
        item = item_by_ref(db.session, "t-001")
        with pytest.raises(WorkflowError):
            approve(db.session, item, reviewer.id, NOW)
        submit_for_review(db.session, item, author.id, NOW)
        with pytest.raises(WorkflowError):
            submit_for_review(db.session, item, author.id, NOW)


def test_retired_items_leave_assembly(app, people):
    """A retired item is no longer offered to form assembly."""
    author, _ = people
    with app.app_context():
        import_bundles(db.session, [Bundle(items=[make_document()])], status="approved", now=NOW)
        item = item_by_ref(db.session, "t-001")
        retire(db.session, item, author.id, NOW)
        assert approved_pool(db.session, {}) == []
        with pytest.raises(WorkflowError):
            retire(db.session, item, author.id, NOW)
