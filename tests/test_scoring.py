"""Pure scoring: grading and the percent, scaled and IRT rules."""

from __future__ import annotations

import dataclasses
import json
import math

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


# --------------------------------------------------------------------------- IRT per section


def sections_graded(patterns: dict[str, str], versions: dict[str, str | None] | None = None):
    """Graded responses on LSAT6-calibrated items, a pattern of right (1) / wrong (0) per
    scoring section; ``versions`` gives each section's parameter label (none by default)."""
    versions = versions or {}
    return grade_responses(
        ResponseToGrade(
            section,
            "single_choice",
            "A",
            "A" if bit == "1" else "B",
            irt={"a": a, "b": b}
            | ({"version": versions[section]} if versions.get(section) else {}),
        )
        for section, pattern in patterns.items()
        for bit, (a, b) in zip(pattern, LSAT6_2PL, strict=True)
    )


JLPT_CODES = ["lk", "listening"]


def jlpt_irt_config(lk_slope: float = 40, listening_slope: float = 20, **overrides):
    """An N4-like per-section IRT rule: LK+Reading 0-120 (min 38), Listening 0-60 (min 19)."""
    return {
        "rule": "irt",
        "sections": [
            {
                "code": "lk",
                "scale_max": 120,
                "min": 38,
                "theta_to_scale": {"slope": lk_slope, "intercept": 70},
            },
            {
                "code": "listening",
                "scale_max": 60,
                "min": 19,
                "theta_to_scale": {"slope": listening_slope, "intercept": 30},
            },
        ],
        "pass_mark": 90,
        **overrides,
    }


def eap(pattern: str):
    from scoring.irt import ItemParameters, estimate_ability

    params = [ItemParameters(str(n), a, b) for n, (a, b) in enumerate(LSAT6_2PL)]
    estimate = estimate_ability([[int(bit) for bit in pattern]], params, "eap")
    return float(estimate.theta[0]), float(estimate.se[0])


def test_irt_per_section_scores_each_section_on_its_own_ability():
    """Each section's ability comes from its own items onto its own scale; the total is the sum."""
    rule = build_rule(jlpt_irt_config(), JLPT_CODES)
    result = rule.score(sections_graded({"lk": "11011", "listening": "11110"}), JLPT_CODES)
    lk, listening = result.sections
    (lk_theta, lk_se), (listening_theta, listening_se) = eap("11011"), eap("11110")
    assert lk.theta == pytest.approx(lk_theta) and listening.theta == pytest.approx(listening_theta)
    assert lk.theta_se == pytest.approx(lk_se) and listening.theta_se == pytest.approx(listening_se)
    assert lk.scaled == math.floor(70 + 40 * lk_theta + 0.5)
    assert listening.scaled == math.floor(30 + 20 * listening_theta + 0.5)
    assert (lk.scale_max, listening.scale_max, result.total_max) == (120, 60, 180)
    assert result.total == lk.scaled + listening.scaled
    assert (lk.calibrated_items, listening.calibrated_items, result.calibrated_items) == (5, 5, 10)
    assert result.theta is None  # no single ability across sections
    assert result.passed is True


def test_irt_per_section_reports_ability_and_sem_per_section():
    """The stored result carries theta, its SE, the SEM on the section scale and the item
    count for every section; the total's SEM is the root of the summed squared SEMs."""
    rule = build_rule(jlpt_irt_config(), JLPT_CODES)
    data = rule.score(sections_graded({"lk": "11011", "listening": "10000"}), JLPT_CODES).as_dict()
    (_, lk_se), (_, listening_se) = eap("11011"), eap("10000")
    lk, listening = data["sections"]
    assert {"theta", "theta_se", "conditional_sem", "calibrated_items"} <= set(lk) & set(listening)
    assert lk["conditional_sem"] == round(40 * lk_se, 1)
    assert listening["conditional_sem"] == round(20 * listening_se, 1)
    assert data["conditional_sem"] == round(math.hypot(40 * lk_se, 20 * listening_se), 1)
    assert json.loads(json.dumps(data, allow_nan=False)) == data


def test_irt_per_section_total_pass_but_section_below_minimum_fails():
    """A total at or above the pass mark fails when one section is below its minimum."""
    rule = build_rule(jlpt_irt_config(), JLPT_CODES)
    failed = rule.score(sections_graded({"lk": "11111", "listening": "10000"}), JLPT_CODES)
    assert failed.total >= 90
    assert failed.sections[1].scaled < 19 and failed.sections[1].meets_minimum is False
    assert failed.passed is False
    passed = rule.score(sections_graded({"lk": "11111", "listening": "11011"}), JLPT_CODES)
    assert passed.sections[1].meets_minimum is True
    assert passed.passed is True


def test_irt_per_section_clips_at_both_ends():
    """Scaled section scores stay inside 0..scale_max however far theta maps beyond them."""
    rule = build_rule(jlpt_irt_config(lk_slope=500, listening_slope=500), JLPT_CODES)
    low = rule.score(sections_graded({"lk": "00000", "listening": "00000"}), JLPT_CODES)
    high = rule.score(sections_graded({"lk": "11111", "listening": "11111"}), JLPT_CODES)
    assert [s.scaled for s in low.sections] == [0, 0] and low.total == 0
    assert [s.scaled for s in high.sections] == [120, 60] and high.total == 180
    assert low.passed is False and high.passed is True


def test_irt_theta_scale_rounds_halves_up():
    """A scaled value exactly half-way rounds up (30.5 -> 31, 29.5 -> 30), as the scaled rule."""
    from scoring.rules import ThetaScale

    scale = ThetaScale(slope=2, intercept=30, low=0, high=60)
    assert (scale.score(0.25), scale.score(-0.25)) == (31, 30)


def test_irt_per_section_without_calibrated_items_in_a_section_never_passes():
    """A section whose items have no parameters rests on the prior: the result cannot pass."""
    rule = build_rule(jlpt_irt_config(), JLPT_CODES)
    graded = [
        g if g.section == "lk" else dataclasses.replace(g, irt=None)
        for g in sections_graded({"lk": "11111", "listening": "11111"})
    ]
    result = rule.score(graded, JLPT_CODES)
    assert result.sections[1].calibrated_items == 0
    assert result.sections[1].scaled == 30  # the intercept: theta 0 from the prior
    assert result.total >= 90 and all(s.meets_minimum for s in result.sections)
    assert result.passed is False


def test_irt_per_section_mle_perfect_section_has_no_finite_sem():
    """With MLE an all-right section sits at its scale's top with no finite SEM (nor total SEM)."""
    rule = build_rule(jlpt_irt_config(ability="mle"), JLPT_CODES)
    result = rule.score(sections_graded({"lk": "11111", "listening": "11011"}), JLPT_CODES)
    assert result.sections[0].scaled == 120
    assert result.sections[0].conditional_sem is None and result.sections[0].theta_se is None
    assert result.sections[1].conditional_sem is not None
    assert result.conditional_sem is None
    assert json.dumps(result.as_dict(), allow_nan=False)


def test_irt_per_section_describes_its_pass_rule_and_titles():
    """describe() gives the 0-180 total scale and the section minimums; the rule titles sections."""
    config = jlpt_irt_config(bands=[{"min": 90, "label": "A2"}], bands_for="passed")
    config["sections"][1]["title"] = {"en": "Listening", "ja": "聴解"}
    rule = build_rule(config, JLPT_CODES)
    description = rule.describe()
    assert description["scale"] == {"min": 0.0, "max": 180.0, "unit": "points"}
    assert description["pass_rule"] == {
        "total_min": 90,
        "section_minimums": {"lk": 38, "listening": 19},
    }
    assert rule.section_titles()["listening"]["ja"] == "聴解"
    failed = rule.score(sections_graded({"lk": "11111", "listening": "10000"}), JLPT_CODES)
    assert failed.band is None  # CEFR labels for passers only


@pytest.mark.parametrize(
    "change",
    [
        lambda c: c.update(scale={"min": 0, "max": 180}),  # the total is the sections' sum
        lambda c: c.update(theta_to_scale={"slope": 1, "intercept": 0}),
        lambda c: c["sections"][0].pop("theta_to_scale"),
        lambda c: c["sections"][0].update(theta_to_scale={"slope": 0, "intercept": 0}),
        lambda c: c["sections"][1].update(min=61),
        lambda c: c["sections"].reverse(),  # not the order the parts name
        lambda c: c.update(sections=[]),
        lambda c: c.update(pass_mark=181),
    ],
)
def test_bad_per_section_irt_rules_refused(change):
    """A per-section irt rule needs theta_to_scale and scale_max per section, in part order."""
    config = jlpt_irt_config()
    change(config)
    with pytest.raises(InvalidScoringRule):
        build_rule(config, JLPT_CODES)


# --------------------------------------------------------------------------- parameter versions


def test_irt_result_records_the_item_parameter_versions():
    """The result lists the distinct parameter labels its calibrated items carried, sorted."""
    rule = build_rule(jlpt_irt_config(), JLPT_CODES)
    graded = sections_graded(
        {"lk": "11011", "listening": "11110"}, {"lk": "cal-13", "listening": "cal-12"}
    )
    graded += grade_responses([ResponseToGrade("lk", "single_choice", "A", "A")])  # no parameters
    assert rule.score(graded, JLPT_CODES).as_dict()["item_parameters"] == ["cal-12", "cal-13"]
    whole = build_rule(IRT_CONFIG, ["lk", "listening"]).score(graded, ["lk", "listening"])
    assert whole.as_dict()["item_parameters"] == ["cal-12", "cal-13"]


def test_irt_result_without_parameter_labels_is_unchanged():
    """Items whose parameters carry no version add no key: stored IRT results stay as they were."""
    data = build_rule(IRT_CONFIG, ["total"]).score(irt_graded("11011"), ["total"]).as_dict()
    assert "item_parameters" not in data
    assert "theta" not in data["sections"][0]


def labelled_graded():
    return grade_responses(
        ResponseToGrade(
            section,
            "single_choice",
            "A",
            "A" if right else "B",
            irt={"a": 1.0, "b": 0.0, "version": "cal-12"},
        )
        for section, answers in {"lk": [True, True, False], "listening": [True, False]}.items()
        for right in answers
    )


PERCENT_STORED = (
    '{"rule": "percent", "scoring_version": "3", "sections": [{"code": "lk", "points": 2.0, '
    '"max_points": 3.0, "percent": 66.7, "scaled": null, "scale_max": null, "minimum": null, '
    '"meets_minimum": true}, {"code": "listening", "points": 1.0, "max_points": 2.0, '
    '"percent": 50.0, "scaled": null, "scale_max": null, "minimum": null, "meets_minimum": '
    'true}], "raw_points": 3.0, "raw_max": 5.0, "total": 3.0, "total_max": 5.0, "percent": '
    '60.0, "passed": true, "band": null, "theta": null, "theta_se": null, "conditional_sem": '
    'null, "calibrated_items": null}'
)
SCALED_STORED = (
    '{"rule": "scaled", "scoring_version": "3", "sections": [{"code": "lk", "points": 2.0, '
    '"max_points": 3.0, "percent": 66.7, "scaled": 80, "scale_max": 120.0, "minimum": 38.0, '
    '"meets_minimum": true}, {"code": "listening", "points": 1.0, "max_points": 2.0, '
    '"percent": 50.0, "scaled": 30, "scale_max": 60.0, "minimum": 19.0, "meets_minimum": '
    'true}], "raw_points": 3.0, "raw_max": 5.0, "total": 110.0, "total_max": 180.0, '
    '"percent": 60.0, "passed": true, "band": null, "theta": null, "theta_se": null, '
    '"conditional_sem": null, "calibrated_items": null}'
)


@pytest.mark.parametrize(
    ("config", "stored"),
    [
        ({"rule": "percent", "pass_percent": 60}, PERCENT_STORED),
        (
            {
                "rule": "scaled",
                "pass_mark": 90,
                "sections": [
                    {"code": "lk", "scale_max": 120, "min": 38},
                    {"code": "listening", "scale_max": 60, "min": 19},
                ],
            },
            SCALED_STORED,
        ),
    ],
)
def test_percent_and_scaled_results_are_stored_byte_for_byte_as_before(config, stored):
    """Percent and scaled results serialise exactly as scoring version 3 always did (re-scoring
    compares stored results with fresh ones), even when items carry labelled IRT parameters."""
    result = build_rule(config, JLPT_CODES).score(labelled_graded(), JLPT_CODES)
    assert json.dumps(result.as_dict()) == stored
