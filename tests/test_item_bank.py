"""Importing items: validation, sanitising, versioning, all-or-nothing."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from item_bank.errors import InvalidItem, InvalidResponse
from item_bank.html import sanitize_html
from item_bank.models import Item, ItemVersion
from item_bank.services import (
    SAMPLES_DIR,
    approved_pool,
    import_items,
    read_yaml_bundle,
    validate_item,
)
from item_bank.types import ITEM_TYPES
from testing_center.extensions import db

NOW = dt.datetime(2026, 11, 26, tzinfo=dt.UTC)


def make_document(**overrides):
    document = {
        "ref": "t-001",
        "type": "single_choice",
        "exam_family": "jft_basic",
        "section": "script_vocabulary",
        "level": "A2",
        "topic": "daily_life",
        "stem": "<p><ruby>毎朝<rt>まいあさ</rt></ruby>なにを<b>のみます</b>か。</p>",
        "options": [{"id": k, "html": f"選択{k}"} for k in "ABCD"],
        "key": "C",
        "explanation": {"en": "Because.", "ja": "説明。"},
    }
    document.update(overrides)
    return document


def counts():
    return (
        db.session.scalar(select(func.count()).select_from(Item)),
        db.session.scalar(select(func.count()).select_from(ItemVersion)),
    )


def test_shipped_sample_bank_is_valid():
    """Every shipped sample item validates, with refs unique and keys among the options."""
    documents = [d for p in sorted(SAMPLES_DIR.glob("*.yaml")) for d in read_yaml_bundle(p).items]
    assert len(documents) >= 36
    for document in documents:
        item, problems = validate_item(document)
        assert problems == [], problems
        assert item is not None
    assert len({d["ref"] for d in documents}) == len(documents)


def test_sanitiser_keeps_ruby_and_strips_script():
    """The sanitiser keeps ruby and emphasis, drops scripts, handlers and javascript: URLs."""
    html = sanitize_html(
        '<p onclick="steal()">問<script>alert(1)</script><ruby>題<rt>だい</rt></ruby>'
        '<b>!</b><img src="javascript:alert(1)" onerror="x()"><a href="javascript:x()">a</a></p>'
    )
    assert html == "<p>問<ruby>題<rt>だい</rt></ruby><b>!</b><img>a</p>"


@pytest.mark.parametrize(
    ("html", "named"),
    [
        ("<p>x<script>alert(1)</script></p>", "unsafe <script> element"),
        ('<p onclick="steal()">x</p>', "event handler attribute onclick"),
        ('<p><img src="javascript:alert(1)">x</p>', "javascript URL"),
        ('<p><iframe src="https://evil.example"></iframe>x</p>', "unsafe <iframe> element"),
    ],
)
def test_items_with_unsafe_html_are_refused(html, named):
    """An item carrying script is refused (not silently cleaned), naming what was found."""
    _, problems = validate_item(make_document(stem=html))
    assert f"t-001: {named}" in problems


def test_safe_markup_passes_unchanged():
    """Ruby, emphasis and stored images pass validation as they are."""
    stem = '<p><ruby>毎朝<rt>まいあさ</rt></ruby><b>x</b><img src="/media/abc" alt="時計"></p>'
    item, problems = validate_item(make_document(stem=stem))
    assert problems == []
    assert item.content["stem"] == stem


@pytest.mark.parametrize(
    ("override", "fragment"),
    [
        ({"key": "E"}, "key 'E' is not one of the option ids"),
        ({"options": [{"id": "A", "html": "x"}]}, "options must be a list of 3-5"),
        ({"type": "essay"}, "unknown item type"),
        ({"section": ""}, "section is required"),
        ({"stem": "<script>only</script>"}, "stem must be non-empty HTML"),
        (
            {
                "options": [
                    {"id": "A", "html": "x"},
                    {"id": "A", "html": "y"},
                    {"id": "B", "html": "z"},
                ]
            },
            "options ids must be unique",
        ),
    ],
)
def test_invalid_items_are_described(override, fragment):
    """Each kind of invalid item gets a problem naming the item and the rule."""
    _, problems = validate_item(make_document(**override))
    assert any(fragment in problem and problem.startswith("t-001") for problem in problems)


def test_import_is_all_or_nothing(app):
    """One invalid item among valid ones means nothing at all is written."""
    with app.app_context():
        documents = [
            make_document(ref="ok-1"),
            make_document(ref="bad", key="Z"),
            make_document(ref="ok-2"),
        ]
        with pytest.raises(InvalidItem) as raised:
            import_items(db.session, documents, status="approved", now=NOW)
        db.session.rollback()
        assert raised.value.problems == [
            "<bundle>: bad: key 'Z' is not one of the option ids ['A', 'B', 'C', 'D']"
        ]
        assert counts() == (0, 0)


def test_duplicate_refs_in_one_import_refused(app):
    """Two documents with the same ref in one import are refused."""
    with app.app_context(), pytest.raises(InvalidItem, match="appears more than once"):
        import_items(db.session, [make_document(), make_document()], status="approved", now=NOW)


def test_reimport_is_idempotent_and_changes_make_versions(app):
    """Importing the same item again changes nothing; changed content adds a version."""
    with app.app_context():
        report = import_items(db.session, [make_document()], status="approved", now=NOW)
        assert (report.created, report.versioned, report.unchanged) == (1, 0, 0)
        report = import_items(db.session, [make_document()], status="approved", now=NOW)
        assert (report.created, report.versioned, report.unchanged) == (0, 0, 1)
        report = import_items(db.session, [make_document(key="D")], status="approved", now=NOW)
        assert report.versioned == 1
        db.session.commit()
        versions = db.session.scalars(select(ItemVersion).order_by(ItemVersion.version_no)).all()
        assert [(v.version_no, v.answer_key) for v in versions] == [(1, "C"), (2, "D")]


def test_pool_offers_current_version_of_approved_items_only(app):
    """Assembly sees approved items only, each at its newest version."""
    with app.app_context():
        import_items(db.session, [make_document(ref="a")], status="approved", now=NOW)
        import_items(db.session, [make_document(ref="a", key="B")], status="approved", now=NOW)
        import_items(db.session, [make_document(ref="d")], status="draft", now=NOW)
        pool = approved_pool(db.session, {"section": "script_vocabulary"})
        assert [entry.item_ref for entry in pool] == ["a"]
        newest = db.session.scalar(select(ItemVersion).where(ItemVersion.version_no == 2))
        assert pool[0].version_id == newest.id
        assert pool[0].option_ids == ("A", "B", "C", "D")


def test_single_choice_grading_and_response_check():
    """Single choice: the key earns 1, anything else 0; a foreign option id is invalid."""
    single = ITEM_TYPES["single_choice"]
    content = {"stem": "x", "options": [{"id": k, "html": k} for k in "ABC"]}
    assert single.grade("B", "B") == 1.0
    assert single.grade("B", "A") == 0.0
    single.check_response(content, "C")
    with pytest.raises(InvalidResponse):
        single.check_response(content, "D")


def test_candidate_view_follows_option_order_and_hides_key():
    """The candidate view lists options in the frozen order and holds no key."""
    single = ITEM_TYPES["single_choice"]
    content = {"stem": "s", "options": [{"id": k, "html": k.lower()} for k in "ABC"]}
    view = single.candidate_view(content, ["C", "A", "B"])
    assert view == {
        "options": [{"id": "C", "html": "c"}, {"id": "A", "html": "a"}, {"id": "B", "html": "b"}],
    }


SAMPLE_PLAN = {
    # (exam_family, section, topic or None for any): items the sample bank must hold
    ("jft_basic", "script_vocabulary", None): 16,
    ("jft_basic", "conversation_expression", None): 16,
    ("jft_basic", "listening_comprehension", None): 16,
    ("jft_basic", "reading_comprehension", None): 16,
    ("jlpt", "vocabulary", "kanji_reading"): 9,
    ("jlpt", "vocabulary", "orthography"): 7,
    ("jlpt", "vocabulary", "contextual"): 8,
    ("jlpt", "vocabulary", "paraphrase"): 5,
    ("jlpt", "grammar", "grammar_form"): 11,
    ("jlpt", "grammar", "sentence_composition"): 6,
    ("jlpt", "grammar", "text_grammar"): 8,
    ("jlpt", "reading", "short_passage"): 4,
    ("jlpt", "reading", "mid_passage"): 4,
    ("jlpt", "reading", "info_retrieval"): 2,
    ("jlpt", "listening", "task"): 9,
    ("jlpt", "listening", "point"): 8,
    ("jlpt", "listening", "utterance"): 7,
    ("jlpt", "listening", "quick_response"): 8,
    ("ssw_nursing_care", "knowledge", None): 10,
    ("ssw_nursing_care", "judgement", None): 3,
    ("ssw_nursing_care_japanese", "care_japanese", None): 6,
    ("ssw_food_service", "knowledge", None): 7,
    ("ssw_food_service", "judgement", None): 4,
    ("ssw_construction", "written", None): 9,
    ("ssw_accommodation", "knowledge", None): 10,
    ("ssw_agriculture", "crop", None): 6,
    ("ssw_agriculture", "livestock", None): 4,
}


def test_sample_bank_follows_its_plan():
    """The shipped samples hold at least the items samples/README.md promises per selection."""
    documents = [d for p in sorted(SAMPLES_DIR.glob("*.yaml")) for d in read_yaml_bundle(p).items]
    for (family, section, topic), needed in SAMPLE_PLAN.items():
        found = [
            d
            for d in documents
            if d["exam_family"] == family
            and d["section"] == section
            and (topic is None or d["topic"] == topic)
        ]
        assert len(found) >= needed, (family, section, topic, len(found))


@pytest.mark.parametrize(
    ("override", "fragment"),
    [
        ({"topic": "x" * 65}, "topic must have at most 64"),
        ({"difficulty": {"p": float("nan")}}, "difficulty.p"),
        ({"difficulty": {"irt": {"model": "2pl", "a": "high"}}}, "difficulty.irt.a"),
        ({"difficulty": {"when": "2026-01-01"}}, "difficulty may hold p and irt only"),
        (
            {
                "options": [
                    {"id": "A", "html": None},
                    {"id": "B", "html": "b"},
                    {"id": "C", "html": "c"},
                ]
            },
            "needs a short id and html text",
        ),
        (
            {
                "options": [
                    {"id": True, "html": "a"},
                    {"id": "B", "html": "b"},
                    {"id": "C", "html": "c"},
                ]
            },
            "needs a short id and html text",
        ),
        ({"language": ["x"]}, "language must be a language tag"),
        ({"tags": ["ok", 3]}, "tags must be a list"),
    ],
)
def test_metadata_is_checked_before_storing(override, fragment):
    """Wrong types, lengths and non-finite numbers are refused with the field named."""
    _, problems = validate_item(make_document(**override))
    assert any(fragment in problem for problem in problems), problems


def test_yaml_aliases_are_refused(tmp_path):
    """YAML anchors and aliases (which can expand a small file enormously) are refused."""
    path = tmp_path / "bomb.yaml"
    path.write_text("a: &x [1, 2]\nitems: [*x]\n", encoding="utf-8")
    with pytest.raises(InvalidItem, match="aliases"):
        read_yaml_bundle(path)
