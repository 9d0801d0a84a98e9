"""Every item type: validation of authored documents and grading, edge cases included."""

from __future__ import annotations

import pytest

from item_bank.errors import InvalidResponse
from item_bank.normalize import katakana_to_hiragana, normalize_answer
from item_bank.types import ITEM_TYPES


def clean(document):
    content, key, problems = ITEM_TYPES[document["type"]].clean(document)
    assert problems == [], problems
    return content, key


def options(ids="ABCD"):
    return [{"id": i, "html": f"<b>{i}</b>"} for i in ids]


def grade(document, response):
    item_type = ITEM_TYPES[document["type"]]
    content, key = clean(document)
    item_type.check_response(content, response)
    return item_type.grade(key, response)


MULTI = {"type": "multiple_response", "options": options("ABCDE"), "key": ["A", "C"]}
MULTI_PARTIAL = {**MULTI, "scoring": {"partial_credit": True}}
ORDER = {"type": "ordering", "options": options(), "key": ["C", "A", "D", "B"]}
STAR = {**ORDER, "scoring": {"star_position": 3}}
TEXT = {
    "type": "text_entry",
    "key": {
        "answers": [
            {"value": "たべます", "credit": 1},
            {"value": "食べます", "credit": 1},
            {"value": "たべる", "credit": 0.5},
            {"value": "ABC 12", "credit": 1},
        ]
    },
}
TEXT_KANA = {**TEXT, "key": {**TEXT["key"], "normalize": {"kana": True}}}
MATCH = {
    "type": "matching",
    "prompts": options("12"),
    "choices": options("abc"),
    "key": {"1": "a", "2": "c"},
}
MATCH_PARTIAL = {**MATCH, "scoring": {"partial_credit": True}}


@pytest.mark.parametrize(
    ("document", "response", "credit"),
    [
        ({"type": "single_choice", "options": options(), "key": "B"}, "B", 1.0),
        ({"type": "single_choice", "options": options(), "key": "B"}, "C", 0.0),
        (MULTI, ["C", "A"], 1.0),
        (MULTI, ["A"], 0.0),
        (MULTI, ["A", "C", "E"], 0.0),
        (MULTI_PARTIAL, ["A"], 0.5),
        (MULTI_PARTIAL, ["A", "C", "E"], 0.5),
        (MULTI_PARTIAL, ["A", "B", "E"], 0.0),
        (MULTI_PARTIAL, [], 0.0),
        (ORDER, ["C", "A", "D", "B"], 1.0),
        (ORDER, ["C", "A", "B", "D"], 0.0),
        (STAR, ["A", "C", "D", "B"], 1.0),
        (STAR, ["C", "A", "B", "D"], 0.0),
        (TEXT, "たべます", 1.0),
        (TEXT, "  たべます　", 1.0),
        (TEXT, "食べます", 1.0),
        (TEXT, "たべる", 0.5),
        (TEXT, "タベマス", 0.0),
        (TEXT, "ａｂｃ　１２", 1.0),
        (TEXT, "abc   12", 1.0),
        (TEXT, "", 0.0),
        (TEXT, "   ", 0.0),
        (TEXT_KANA, "タベマス", 1.0),
        (TEXT_KANA, "ﾀﾍﾞﾏｽ", 1.0),
        (MATCH, {"1": "a", "2": "c"}, 1.0),
        (MATCH, {"1": "a"}, 0.0),
        (MATCH_PARTIAL, {"1": "a", "2": "b"}, 0.5),
        (MATCH_PARTIAL, {}, 0.0),
        ({"type": "true_false", "key": True}, True, 1.0),
        ({"type": "true_false", "key": True}, False, 0.0),
        ({"type": "true_false", "key": False}, False, 1.0),
    ],
)
def test_grading(document, response, credit):
    """Each type grades right, wrong, partial, blank, spaced, full-width and kana answers."""
    assert grade(document, response) == pytest.approx(credit)


@pytest.mark.parametrize(
    ("document", "response"),
    [
        (MULTI, ["A", "A"]),
        (MULTI, ["Z"]),
        (MULTI, "A"),
        (ORDER, ["C", "A", "D"]),
        (ORDER, ["C", "A", "D", "D"]),
        (TEXT, 5),
        (TEXT, "あ" * 101),
        (MATCH, {"9": "a"}),
        (MATCH, {"1": "z"}),
        (MATCH, [["1", "a"]]),
        ({"type": "true_false", "key": True}, "true"),
        ({"type": "true_false", "key": True}, 1),
    ],
)
def test_malformed_responses_refused(document, response):
    """A response of the wrong shape or naming unknown ids is refused before grading."""
    item_type = ITEM_TYPES[document["type"]]
    content, _ = clean(document)
    with pytest.raises(InvalidResponse):
        item_type.check_response(content, response)


@pytest.mark.parametrize(
    ("document", "fragment"),
    [
        ({**MULTI, "key": []}, "key must be a non-empty list"),
        ({**MULTI, "key": ["A", "Z"]}, "names ids that are not options"),
        ({**MULTI, "scoring": {"partial_credit": "yes"}}, "scoring.partial_credit"),
        ({**ORDER, "key": ["C", "A", "D"]}, "key must list every option id once"),
        ({**ORDER, "scoring": {"star_position": 9}}, "scoring.star_position"),
        ({**TEXT, "key": {"answers": []}}, "at least one accepted answer"),
        ({**TEXT, "key": {"answers": [{"value": "x", "credit": 0.5}]}}, "full credit"),
        ({**TEXT, "key": {"answers": [{"value": "x", "credit": 2}]}}, "credit must be"),
        ({**TEXT, "max_length": 0}, "max_length"),
        ({**MATCH, "key": {"1": "a"}}, "every prompt id"),
        ({**MATCH, "key": {"1": "a", "2": "z"}}, "every prompt id"),
        ({"type": "true_false", "key": "yes"}, "true or false"),
    ],
)
def test_invalid_keys_described(document, fragment):
    """Each type names the rule an authored key breaks."""
    _, _, problems = ITEM_TYPES[document["type"]].clean(document)
    assert any(fragment in problem for problem in problems), problems


@pytest.mark.parametrize(
    "document",
    [
        {"type": "single_choice", "options": options(), "key": "B"},
        MULTI_PARTIAL,
        STAR,
        TEXT_KANA,
        MATCH_PARTIAL,
        {"type": "true_false", "key": False},
    ],
)
def test_to_document_round_trips(document):
    """Cleaning a document's export gives back the same content and key."""
    item_type = ITEM_TYPES[document["type"]]
    content, key = clean(document)
    exported = {"type": document["type"], **item_type.to_document(content, key)}
    assert clean(exported) == (content, key)


def test_candidate_views_carry_no_key():
    """No type's candidate view contains its key or scoring settings."""
    for document in (MULTI_PARTIAL, STAR, TEXT_KANA, MATCH_PARTIAL):
        item_type = ITEM_TYPES[document["type"]]
        content, _ = clean(document)
        view = item_type.candidate_view(content, item_type.option_ids(content))
        assert not {"key", "answers", "pairs", "ids", "partial_credit", "kana", "order"} & set(view)
    text_view = ITEM_TYPES["text_entry"].candidate_view(clean(TEXT)[0], [])
    assert "たべ" not in str(text_view)


def test_kana_folding():
    """Katakana folds onto hiragana; the long-vowel mark stays."""
    assert katakana_to_hiragana("コーヒー") == "こーひー"
    assert normalize_answer("Ｔｏｋｙｏ　　Ｓｔａｔｉｏｎ ") == "tokyo station"


@pytest.mark.parametrize(
    "response", [[1, "A", "B", "C"], [None, "A", "B", "C"], [["A"], "B", "C", "D"]]
)
def test_ordering_refuses_mixed_values(response):
    """An ordering response with anything but fragment ids is invalid, not a crash."""
    content, _ = clean(ORDER)
    with pytest.raises(InvalidResponse):
        ITEM_TYPES["ordering"].check_response(content, response)
