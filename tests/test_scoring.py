"""Pure scoring: grading and the percent-correct rule."""

from __future__ import annotations

import pytest

from scoring.errors import InvalidScoringRule
from scoring.grading import ResponseToGrade, grade_responses
from scoring.rules import PercentCorrect, build_rule


def graded(pattern: dict[str, list[bool]]):
    return grade_responses(
        ResponseToGrade(
            section=section,
            item_type="single_choice",
            answer_key="A",
            response="A" if right else "B",
        )
        for section, answers in pattern.items()
        for right in answers
    )


def test_unanswered_item_earns_nothing():
    """An item without a response scores 0 and still counts in the maximum."""
    [result] = grade_responses([ResponseToGrade("s", "single_choice", "A", None)])
    assert (result.points, result.max_points) == (0.0, 1.0)


def test_percent_rule_sections_and_total():
    """Points add up per section and in total; percent is rounded to one decimal."""
    rule = PercentCorrect(pass_percent=60)
    score = rule.score(graded({"a": [True, True, False], "b": [True, False, False]}), ["a", "b"])
    assert [(s.code, s.points, s.max_points, s.percent) for s in score.sections] == [
        ("a", 2, 3, 66.7),
        ("b", 1, 3, 33.3),
    ]
    assert (score.total, score.total_max, score.percent) == (3, 6, 50.0)
    assert score.passed is False


@pytest.mark.parametrize(("right", "passed"), [(5, False), (6, True)])
def test_pass_mark_is_inclusive(right, passed):
    """Exactly the pass mark passes (6 of 10 at 60%); one below fails."""
    score = PercentCorrect(60).score(graded({"a": [True] * right + [False] * (10 - right)}), ["a"])
    assert score.passed is passed


def test_pass_decision_is_exact_not_rounded():
    """65% of 200 is 130 points: 129 fails even though it rounds to 64.5%."""
    rule = PercentCorrect(65)
    assert rule.score(graded({"a": [True] * 129 + [False] * 71}), ["a"]).passed is False
    assert rule.score(graded({"a": [True] * 130 + [False] * 70}), ["a"]).passed is True


@pytest.mark.parametrize(
    "config",
    [
        None,
        {"rule": "irt"},
        {"rule": "percent"},
        {"rule": "percent", "pass_percent": 0},
        {"rule": "percent", "pass_percent": True},
    ],
)
def test_bad_rule_configuration_refused(config):
    """An unknown rule or a pass mark outside 0-100 is refused."""
    with pytest.raises(InvalidScoringRule):
        build_rule(config)


def test_result_records_scoring_version():
    """A stored result says which scoring version produced it."""
    data = PercentCorrect(60).score(graded({"a": [True]}), ["a"]).as_dict()
    assert data["scoring_version"] == "3"
    assert data["rule"] == "percent"


def n5_rule():
    return build_rule(
        {
            "rule": "scaled",
            "pass_mark": 80,
            "sections": [
                {"code": "lk", "scale_max": 120, "min": 38},
                {"code": "listening", "scale_max": 60, "min": 19},
            ],
            "bands": [{"min": 80, "label": "A1"}],
            "bands_for": "passed",
        },
        ["lk", "listening"],
    )


def test_scaled_halves_round_up():
    """13 of 24 on a 0-60 section is 32.5 and scores 33 (not 32 by banker's rounding)."""
    score = n5_rule().score(
        graded({"lk": [True] * 17 + [False] * 26, "listening": [True] * 13 + [False] * 11}),
        ["lk", "listening"],
    )
    assert [s.scaled for s in score.sections] == [47, 33]
    assert score.total == 80
    assert score.passed is True
    assert score.band == "A1"


def test_section_minimum_fails_even_with_enough_total():
    """A total above the pass mark fails when one section is below its minimum."""
    score = n5_rule().score(
        graded({"lk": [True] * 43, "listening": [True] * 7 + [False] * 17}), ["lk", "listening"]
    )
    assert score.total >= 80
    assert score.sections[1].scaled == 18
    assert score.passed is False
    assert score.band is None


def test_jft_scale_and_bands():
    """JFT-style: 10-250 on the whole test, pass 200, bands, '*' below the lowest."""
    rule = build_rule(
        {
            "rule": "scaled",
            "scale": {"min": 10, "max": 250},
            "pass_mark": 200,
            "bands": [
                {"min": 145, "label": "A1"},
                {"min": 175, "label": "A2.1"},
                {"min": 200, "label": "A2.2"},
            ],
            "below_bands": "*",
        },
        ["a"],
    )
    assert rule.score(graded({"a": [True] * 48}), ["a"]).total == 250
    full = rule.score(graded({"a": [True] * 38 + [False] * 10}), ["a"])
    assert (full.total, full.band, full.passed) == (200, "A2.2", True)
    low = rule.score(graded({"a": [True] * 10 + [False] * 38}), ["a"])
    assert (low.band, low.passed) == ("*", False)
