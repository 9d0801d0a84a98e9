"""Review workflow: drafts, review by a second person, immutable approved versions."""

from __future__ import annotations

import datetime as dt

import pytest

from item_bank.bundle import Bundle
from item_bank.errors import InvalidItem, WorkflowError
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


def test_draft_of_another_type_leaves_approved_version_alone(
    app, people, client, make_candidate, auth_headers
):
    """A draft that changes type and section does not change the approved version exams use."""
    author, reviewer = people
    with app.app_context():
        import_bundles(db.session, [Bundle(items=[make_document()])], status="approved", now=NOW)
        draft(
            make_document(type="true_false", key=True, section="reading", options=None), author.id
        )
        pool = approved_pool(db.session, {"section": "script_vocabulary"})
        assert [(e.item_ref, e.item_type) for e in pool] == [("t-001", "single_choice")]
        item = item_by_ref(db.session, "t-001")
        assert (item.item_type, item.section) == ("single_choice", "script_vocabulary")
        submit_for_review(db.session, item, author.id, NOW)
        approve(db.session, item, reviewer.id, NOW)
        assert (item.item_type, item.section) == ("true_false", "reading")


def test_an_editor_cannot_approve(app, people, make_staff):
    """Whoever edited a draft cannot approve it, even if someone else created it."""
    author, editor = people
    third = make_staff(Role.AUTHOR)
    with app.app_context():
        draft(make_document(), author.id)
        draft(make_document(key="D"), editor.id)
        item = item_by_ref(db.session, "t-001")
        submit_for_review(db.session, item, editor.id, NOW)
        with pytest.raises(WorkflowError, match="second person"):
            approve(db.session, item, editor.id, NOW)
        approve(db.session, item, third.id, NOW)


def test_approval_names_the_version_seen(app, people):
    """Approving version 1 after version 2 replaced it is refused."""
    author, reviewer = people
    with app.app_context():
        import_bundles(db.session, [Bundle(items=[make_document()])], status="approved", now=NOW)
        draft(make_document(key="D"), author.id)
        item = item_by_ref(db.session, "t-001")
        submit_for_review(db.session, item, author.id, NOW, version_no=2)
        with pytest.raises(WorkflowError, match="no longer the latest"):
            approve(db.session, item, reviewer.id, NOW, version_no=1)


def test_no_edits_while_in_review(app, people):
    """A version in review cannot be changed by a draft import or edit."""
    author, _ = people
    with app.app_context():
        draft(make_document(), author.id)
        submit_for_review(db.session, item_by_ref(db.session, "t-001"), author.id, NOW)
        with pytest.raises(InvalidItem, match="in review"):
            draft(make_document(key="B"), author.id)


def test_enemies_can_be_removed(app):
    """An approved version without enemies drops the pairs its item named before."""
    from item_bank.services import enemy_pairs

    first = make_document(ref="e-1", enemies=["e-2"])
    second = make_document(ref="e-2")
    with app.app_context():
        import_bundles(db.session, [Bundle(items=[first, second])], status="approved", now=NOW)
        ids = [item_by_ref(db.session, r).id for r in ("e-1", "e-2")]
        assert enemy_pairs(db.session, ids) == {tuple(sorted(ids))}
        import_bundles(
            db.session, [Bundle(items=[make_document(ref="e-1")])], status="approved", now=NOW
        )
        assert enemy_pairs(db.session, ids) == set()
