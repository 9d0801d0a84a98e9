"""Pure scoring: grading and the percent-correct rule."""

from __future__ import annotations

import json

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


LSAT6_2PL = [(0.825, -3.360), (0.723, -1.370), (0.890, -0.280), (0.689, -1.866), (0.657, -3.124)]


def irt_graded(pattern: str, calibrated: bool = True):
    return grade_responses(
        ResponseToGrade(
            "total",
            "single_choice",
            "A",
            "A" if bit == "1" else "B",
            irt={"a": a, "b": b} if calibrated else None,
        )
        for bit, (a, b) in zip(pattern, LSAT6_2PL, strict=True)
    )


IRT_CONFIG = {
    "rule": "irt",
    "scale": {"min": 10, "max": 250},
    "theta_to_scale": {"slope": 40, "intercept": 170},
    "pass_mark": 200,
}


def test_irt_rule_uses_eap_ability():
    """The irt rule reports the EAP ability of the pattern and its linear scale score."""
    from scoring.irt import ItemParameters, estimate_ability

    params = [ItemParameters(item_id=str(n), a=a, b=b, c=0.0) for n, (a, b) in enumerate(LSAT6_2PL)]
    expected = estimate_ability([[1, 1, 0, 1, 1]], params, "eap")
    result = build_rule(IRT_CONFIG, ["total"]).score(irt_graded("11011"), ["total"])
    assert result.theta == pytest.approx(float(expected.theta[0]))
    assert result.total == round(170 + 40 * float(expected.theta[0]))
    assert result.conditional_sem == pytest.approx(40 * float(expected.se[0]), abs=0.1)
    assert result.calibrated_items == 5


def test_irt_rule_orders_patterns_and_clips():
    """More right answers never lower the ability; the score stays inside the scale."""
    rule = build_rule({**IRT_CONFIG, "theta_to_scale": {"slope": 500, "intercept": 0}}, ["total"])
    low = rule.score(irt_graded("00000"), ["total"])
    high = rule.score(irt_graded("11111"), ["total"])
    assert low.theta < high.theta
    assert low.total == 10 and high.total == 250


def test_irt_rule_without_calibrated_items_never_passes():
    """With no calibrated item the result rests on the prior and does not pass."""
    rule = build_rule({**IRT_CONFIG, "pass_mark": 100}, ["total"])
    result = rule.score(irt_graded("11111", calibrated=False), ["total"])
    assert result.calibrated_items == 0
    assert result.passed is False


def test_conversion_table_for_a_fixed_form():
    """A section with a conversion table scores by the table, not the linear map."""
    rule = build_rule(
        {
            "rule": "scaled",
            "pass_mark": 30,
            "sections": [
                {
                    "code": "a",
                    "scale_max": 60,
                    "min": 19,
                    "table": [[0, 0], [3, 20], [6, 45], [9, 60]],
                }
            ],
        },
        ["a"],
    )
    scores = [
        rule.score(graded({"a": [True] * right + [False] * (10 - right)}), ["a"])
        for right in (2, 3, 8, 10)
    ]
    assert [s.sections[0].scaled for s in scores] == [0, 20, 45, 60]
    assert [s.passed for s in scores] == [False, False, True, True]


@pytest.mark.parametrize(
    "table", [[[0, 0], [0, 10]], [[0, 30], [5, 20]], [[0, 0], [5, 99]], "steps"]
)
def test_bad_conversion_tables_refused(table):
    """A table whose rows do not rise, or leave the scale, is refused."""
    with pytest.raises(InvalidScoringRule):
        build_rule(
            {
                "rule": "scaled",
                "pass_mark": 10,
                "sections": [{"code": "a", "scale_max": 60, "table": table}],
            },
            ["a"],
        )


def test_irt_rule_mle_on_a_perfect_pattern():
    """With MLE, an all-right pattern scores at the top of the scale, with no finite SEM."""
    rule = build_rule({**IRT_CONFIG, "ability": "mle"}, ["total"])
    result = rule.score(irt_graded("11111"), ["total"])
    assert result.total == 250
    assert result.conditional_sem is None
    assert json.dumps(result.as_dict(), allow_nan=False)
