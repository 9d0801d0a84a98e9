"""Classical item analysis, checked against independent plain-formula computations."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest

from scoring.analysis import (
    ChoiceData,
    InvalidAnalysisInput,
    analyze_items,
    cronbach_alpha,
    kr20,
    prorated_totals,
    standard_error_of_measurement,
)

# Six persons, four 0/1 items. By hand: p = 4/6, 4/6, 4/6, 2/6; totals 3, 2, 3, 4, 1, 1;
# sum of p q = 8/9, total variance 11/9, so alpha = 4/3 * (1 - 8/11) = 4/11.
SMALL = [
    [1, 1, 1, 0],
    [1, 1, 0, 0],
    [1, 0, 1, 1],
    [1, 1, 1, 1],
    [0, 0, 1, 0],
    [0, 1, 0, 0],
]


# --- independent plain-Python formulas ---------------------------------------------


def mean(values):
    return sum(values) / len(values)


def pvariance(values):
    m = mean(values)
    return sum((v - m) ** 2 for v in values) / len(values)


def pearson(a, b):
    ma, mb = mean(a), mean(b)
    cov = sum((x - ma) * (y - mb) for x, y in zip(a, b, strict=True)) / len(a)
    return cov / math.sqrt(pvariance(a) * pvariance(b))


def plain_alpha(rows):
    k = len(rows[0])
    item_var = sum(pvariance([row[j] for row in rows]) for j in range(k))
    return k / (k - 1) * (1 - item_var / pvariance([sum(row) for row in rows]))


def simulate(seed=20261126, persons=600, items=20):
    """Rasch-like 0/1 data: P(correct) = logistic(theta - b)."""
    rng = np.random.default_rng(seed)
    theta = rng.normal(size=(persons, 1))
    b = np.linspace(-1.5, 1.5, items)
    return (rng.random((persons, items)) < 1 / (1 + np.exp(-(theta - b)))).astype(float), rng


def rounded(value, digits=9):
    """Round every float in a nested as_dict() structure."""
    if isinstance(value, dict):
        return {key: rounded(item, digits) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [rounded(item, digits) for item in value]
    if isinstance(value, float):
        return round(value, digits) + 0.0
    return value


# --- item statistics ----------------------------------------------------------------


def test_facility_point_biserial_and_item_rest_match_plain_formulas():
    """p is the item mean; r_pbis correlates item and total; item-rest excludes the item."""
    result = analyze_items(np.array(SMALL, dtype=float))
    totals = [sum(row) for row in SMALL]
    for j, item in enumerate(result.items):
        column = [row[j] for row in SMALL]
        rest = [total - x for total, x in zip(totals, column, strict=True)]
        assert item.n_presented == 6
        assert item.facility == pytest.approx(mean(column))
        assert item.point_biserial == pytest.approx(pearson(column, totals))
        assert item.item_rest == pytest.approx(pearson(column, rest))
    assert [item.facility for item in result.items] == pytest.approx([4 / 6] * 3 + [2 / 6])


def test_alpha_matches_hand_value_and_plain_formula():
    """Cronbach's alpha of the small matrix is 4/11, as computed by hand."""
    result = analyze_items(np.array(SMALL, dtype=float))
    assert result.test.alpha == pytest.approx(4 / 11)
    assert result.test.alpha == pytest.approx(plain_alpha(SMALL))
    assert cronbach_alpha(SMALL) == pytest.approx(4 / 11)


def test_kr20_equals_alpha_on_dichotomous_data():
    """KR-20 (sum p q) equals Cronbach's alpha on complete 0/1 data."""
    data, _ = simulate()
    for matrix in (np.array(SMALL, dtype=float), data):
        test = analyze_items(matrix).test
        assert test.kr20 == pytest.approx(test.alpha, abs=1e-12)
    assert kr20(SMALL) == pytest.approx(4 / 11)


def test_kr20_is_undefined_for_partial_credit():
    """KR-20 is only computed when every score is 0 or 1."""
    partial = np.array(SMALL, dtype=float)
    partial[0, 0] = 0.5
    assert kr20(partial) is None
    assert analyze_items(partial).test.alpha is not None


def test_alpha_if_deleted_matches_recomputed_alpha():
    """Alpha if item j is deleted equals alpha recomputed on the matrix without item j."""
    data, _ = simulate(persons=200, items=8)
    result = analyze_items(data)
    for j, item in enumerate(result.items):
        reduced = np.delete(data, j, axis=1).tolist()
        assert item.alpha_if_deleted == pytest.approx(plain_alpha(reduced))


def test_standard_error_of_measurement():
    """SEM = SD of totals * sqrt(1 - alpha), SD as population SD."""
    test = analyze_items(np.array(SMALL, dtype=float)).test
    sd = math.sqrt(pvariance([sum(row) for row in SMALL]))
    assert test.mean == pytest.approx(14 / 6)
    assert test.sd == pytest.approx(sd)
    assert test.sem == pytest.approx(sd * math.sqrt(1 - 4 / 11))
    assert standard_error_of_measurement(10.0, 0.91) == pytest.approx(3.0)
    assert standard_error_of_measurement(None, 0.9) is None


def test_lsat6_published_values():
    """LSAT section 6 (Bock & Lieberman 1970, 1000 persons): p and alpha as published."""
    frequencies = [3, 6, 2, 11, 1, 1, 3, 4, 1, 8, 0, 16, 0, 3, 2, 15]
    frequencies += [10, 29, 14, 81, 3, 28, 15, 80, 16, 56, 21, 173, 11, 61, 28, 298]
    patterns = np.array(list(itertools.product([0, 1], repeat=5)), dtype=float)
    result = analyze_items(patterns, weights=frequencies)
    assert result.test.n_persons == 1000
    assert [item.facility for item in result.items] == pytest.approx(
        [0.924, 0.709, 0.553, 0.763, 0.870]
    )
    assert result.test.alpha == pytest.approx(0.295, abs=5e-4)  # ltm: cronbach.alpha(LSAT)
    assert result.test.kr20 == pytest.approx(result.test.alpha)


def test_weights_equal_duplicated_rows():
    """A person with frequency weight n gives the same analysis as n copies of the row."""
    data, rng = simulate(persons=40, items=6)
    data[rng.random(data.shape) < 0.1] = np.nan
    choices = np.where(data == 1, "A", "B").astype(object)
    choices[np.isnan(data)] = None
    choice_data = ChoiceData(choices, [("A", "B", "C")] * 6, ["A"] * 6)
    weights = rng.integers(0, 4, size=40)
    weighted = analyze_items(data, weights=weights, choices=choice_data)
    repeated = analyze_items(
        np.repeat(data, weights, axis=0),
        choices=ChoiceData(np.repeat(choices, weights, axis=0), choice_data.options, ["A"] * 6),
    )
    assert rounded(weighted.as_dict()) == rounded(repeated.as_dict())


# --- flags on simulated data --------------------------------------------------------


def test_simulation_flags_random_and_reversed_items():
    """A random-response item is flagged low discrimination, a reversed item negative."""
    data, rng = simulate()
    data[:, 4] = (rng.random(len(data)) < 0.5).astype(float)
    data[:, 9] = 1 - data[:, 9]
    result = analyze_items(data)
    codes = [{flag.code for flag in item.flags} for item in result.items]
    assert "low_discrimination" in codes[4]
    assert abs(result.items[4].item_rest) < 0.2
    assert {"negative_discrimination", "low_discrimination", "alpha_rises_if_deleted"} <= codes[9]
    assert result.items[9].item_rest < -0.2
    assert result.items[9].discrimination_index < 0
    for j, item_codes in enumerate(codes):
        if j not in (4, 9):
            assert not item_codes & {"low_discrimination", "negative_discrimination"}


def test_thresholds_flag_easy_and_hard_items():
    """p > .9 is flagged too easy and p < .2 too hard."""
    data, _ = simulate(persons=300, items=10)
    data[:285, 0] = 1.0  # p >= 0.95
    data[:, 1] = 0.0
    data[:30, 1] = 1.0  # p = 0.1
    codes = [{flag.code for flag in item.flags} for item in analyze_items(data).items]
    assert "too_easy" in codes[0]
    assert "too_hard" in codes[1]


def test_constant_item_has_undefined_correlations_without_warnings():
    """An item everyone got right has no correlation (None) and raises no numpy warning."""
    matrix = np.array(SMALL, dtype=float)
    matrix[:, 1] = 1.0
    item = analyze_items(matrix).items[1]
    assert (item.facility, item.point_biserial, item.item_rest) == (1.0, None, None)
    assert {flag.code for flag in item.flags} == {
        "too_easy",
        "no_discrimination_data",
        "alpha_rises_if_deleted",  # k/(k-1) shrinks, the variances do not change
    }
    constant = analyze_items(np.ones((5, 3)))
    assert (constant.test.alpha, constant.test.kr20, constant.test.sem) == (None, None, None)


# --- distractors --------------------------------------------------------------------


def distractor_example():
    """Ten persons with distinct-ish totals: anchors 1..9 form a staircase (person i has
    i anchors right); item 0 is a choice item with key A."""
    picks = ["B", "B", "C", "A", "C", "A", "A", "A", "D", "A"]
    anchors = [[1.0 if a < i else 0.0 for a in range(9)] for i in range(10)]
    scores = np.array(
        [[1.0 if pick == "A" else 0.0, *row] for pick, row in zip(picks, anchors, strict=True)]
    )
    choices = [[pick] + [None] * 9 for pick in picks]
    data = ChoiceData(choices, [("A", "B", "C", "D", "E")] + [None] * 9, ["A"] + [None] * 9)
    return scores, data, picks


def test_distractor_analysis_on_constructed_example():
    """Option shares overall, in the upper/lower 30%, and option point-biserials."""
    scores, data, picks = distractor_example()
    item = analyze_items(scores, choices=data, group_fraction=0.3).items[0]
    totals = list(scores.sum(axis=1))  # 0 1 2 4 4 6 7 8 8 10: top 3 = persons 9, 7, 8
    by_option = {option.option: option for option in item.options}
    expected = {  # option: (overall, upper, lower)
        "A": (5 / 10, 2 / 3, 0.0),
        "B": (2 / 10, 0.0, 2 / 3),
        "C": (2 / 10, 0.0, 1 / 3),
        "D": (1 / 10, 1 / 3, 0.0),
        "E": (0.0, 0.0, 0.0),
    }
    for option, (overall, upper, lower) in expected.items():
        stats = by_option[option]
        assert (stats.proportion, stats.upper_proportion, stats.lower_proportion) == (
            pytest.approx(overall),
            pytest.approx(upper),
            pytest.approx(lower),
        )
        chose = [1.0 if pick == option else 0.0 for pick in picks]
        if option == "E":
            assert stats.point_biserial is None
        else:
            assert stats.point_biserial == pytest.approx(pearson(chose, totals))
    assert by_option["A"].is_key
    assert by_option["A"].point_biserial == pytest.approx(item.point_biserial)
    assert by_option["B"].point_biserial < 0
    assert item.omitted == 0.0
    messages = {flag.message for flag in item.flags}
    assert "distractor E chosen by nobody" in messages
    assert any(m.startswith("distractor D attracts the upper group") for m in messages)
    assert not any("distractor B" in m or "distractor C" in m for m in messages)


def test_groups_split_tied_persons_fractionally():
    """With 27% of 10 persons, the two persons tied at the boundary share 0.7 evenly."""
    scores, data, _ = distractor_example()
    item = analyze_items(scores, choices=data).items[0]
    # upper 2.7: person 9 (A) whole, persons 7 (A) and 8 (D) at 0.85 each
    assert item.upper_facility == pytest.approx(1.85 / 2.7)
    assert item.lower_facility == 0.0
    assert item.discrimination_index == pytest.approx(1.85 / 2.7)


def test_choices_outside_the_options_are_refused():
    """A chosen label that the item did not offer is an input error."""
    scores, data, _ = distractor_example()
    bad = ChoiceData([["Z", *row[1:]] for row in data.choices], data.options, data.keys)
    with pytest.raises(InvalidAnalysisInput):
        analyze_items(scores, choices=bad)


# --- missing by design --------------------------------------------------------------


def test_not_presented_items_use_pairwise_data_and_prorated_totals():
    """NaN items are skipped: p over presented, totals prorated, correlations pairwise."""
    nan = math.nan
    matrix = [
        [1, 1, nan, 0],
        [1, 0, 1, nan],
        [0, nan, 1, 1],
        [1, 1, 1, 1],
        [nan, 0, 0, 0],
        [0, 1, 0, nan],
        [1, nan, 1, 1],
    ]
    k = 4
    totals = [k * mean([x for x in row if x == x]) for row in matrix]  # x == x: not NaN
    assert list(prorated_totals(matrix)) == pytest.approx(totals)
    result = analyze_items(np.array(matrix, dtype=float))
    for j, item in enumerate(result.items):
        rows = [i for i, row in enumerate(matrix) if row[j] == row[j]]
        column = [matrix[i][j] for i in rows]
        rest = [
            (k - 1) * mean([x for m, x in enumerate(matrix[i]) if m != j and x == x]) for i in rows
        ]
        assert item.n_presented == len(rows)
        assert item.facility == pytest.approx(mean(column))
        assert item.point_biserial == pytest.approx(pearson(column, [totals[i] for i in rows]))
        assert item.item_rest == pytest.approx(pearson(column, rest))
    assert result.test.n_complete == 1
    assert result.test.kr20 is None  # one complete row: no variance


def test_alpha_with_missing_uses_pairwise_covariances():
    """With NaN, alpha uses each item pair's covariance over persons presented both."""
    data, rng = simulate(persons=120, items=5)
    data[rng.random(data.shape) < 0.2] = np.nan
    rows = data.tolist()

    def pair_cov(j, m):
        both = [(r[j], r[m]) for r in rows if r[j] == r[j] and r[m] == r[m]]
        mj, ml = mean([a for a, _ in both]), mean([b for _, b in both])
        return sum((a - mj) * (b - ml) for a, b in both) / len(both)

    cov = [[pair_cov(j, m) for m in range(5)] for j in range(5)]
    total = sum(map(sum, cov))
    expected = 5 / 4 * (1 - sum(cov[j][j] for j in range(5)) / total)
    assert analyze_items(data).test.alpha == pytest.approx(expected)


def test_items_never_presented_together_leave_alpha_undefined():
    """Alpha is None when some pair of items was never presented to the same person."""
    nan = math.nan
    matrix = [[1, nan, 1], [0, nan, 0], [nan, 1, 1], [nan, 0, 0], [1, nan, 0]]
    result = analyze_items(np.array(matrix, dtype=float))
    assert result.test.alpha is None
    assert result.test.sem is None
    assert result.items[0].facility == pytest.approx(2 / 3)


def test_persons_without_presented_items_are_ignored():
    """A row of NaN (nothing presented) does not count as a person."""
    matrix = np.array([*SMALL, [math.nan] * 4], dtype=float)
    result = analyze_items(matrix)
    assert result.test.n_persons == 6
    assert result.test.alpha == pytest.approx(4 / 11)


# --- output -------------------------------------------------------------------------


def test_as_dict_is_json_ready_and_csv_rows_form_a_table():
    """as_dict() survives strict JSON; to_csv_rows() is a header plus one row per item."""
    scores, data, _ = distractor_example()
    result = analyze_items(scores, choices=data, item_ids=[f"Q{j}" for j in range(10)])
    payload = json.loads(json.dumps(result.as_dict(), allow_nan=False))
    assert payload["test"]["n_items"] == 10
    assert payload["items"][0]["options"][4]["point_biserial"] is None
    rows = result.to_csv_rows()
    assert rows[0][:3] == ["item", "n_presented", "p"]
    assert [row[0] for row in rows[1:]] == [f"Q{j}" for j in range(10)]
    assert all(len(row) == len(rows[0]) for row in rows)
    assert "distractor E chosen by nobody" in rows[1][-1]
    assert len(result.option_csv_rows()) == 1 + 5


@pytest.mark.parametrize(
    ("scores", "weights"),
    [
        ([1, 0, 1], None),
        ([[1.5, 0]], None),
        ([[1, 0], [0, 1]], [1, -1]),
        ([[1, 0], [0, 1]], [1]),
    ],
)
def test_invalid_input_is_refused(scores, weights):
    """Non-matrices, scores outside [0, 1] and bad weights raise InvalidAnalysisInput."""
    with pytest.raises(InvalidAnalysisInput):
        analyze_items(scores, weights=weights)
