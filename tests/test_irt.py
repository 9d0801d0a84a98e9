"""IRT calibration (MML/EM) and ability estimation, checked against published LSAT fits.

Reference: LSAT6 (Bock & Lieberman 1970, Psychometrika 35, 179-197), 1000 persons,
5 items, 32 response patterns. ``ltm(LSAT ~ z1)`` (R package ltm, Rizopoulos 2006):
difficulties -3.360 -1.370 -0.280 -1.866 -3.124, discriminations 0.825 0.723 0.890
0.689 0.657, log-likelihood -2466.653. LSAT7 (section 7 of the same study): mirt's
published 2PL fit, see the LSAT7 section below.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from scoring.irt import (
    CalibrationResult,
    ItemParameters,
    ResponseData,
    calibrate,
    estimate_ability,
    item_information,
    parameters_from_document,
    read_response_csv,
)
from scoring.irt import test_information as information_of_test

DATA = Path(__file__).parent / "data"
LSAT6_B = [-3.360, -1.370, -0.280, -1.866, -3.124]
LSAT6_A = [0.825, 0.723, 0.890, 0.689, 0.657]
LSAT6_LOGLIK_2PL = -2466.653
# the values this module gets for the one-common-discrimination (ltm rasch()) model
LSAT6_RASCH_B = [-3.615, -1.322, -0.318, -1.730, -2.780]
LSAT6_RASCH_A = 0.755
LSAT6_RASCH_LOGLIK = -2466.938


@pytest.fixture(scope="module")
def lsat6() -> ResponseData:
    return read_response_csv(DATA / "lsat6.csv")


@pytest.fixture(scope="module")
def lsat6_2pl(lsat6: ResponseData) -> CalibrationResult:
    return calibrate(lsat6, "2pl")


def simulate_2pl(seed: int, persons: int, items: int, missing: float = 0.0, guessing=None):
    """Return (responses, a, b, c, theta) drawn from known parameters."""
    rng = np.random.default_rng(seed)
    a = rng.uniform(0.7, 2.0, items)
    b = rng.uniform(-2.0, 2.0, items)
    c = np.zeros(items) if guessing is None else rng.uniform(*guessing, items)
    theta = rng.standard_normal(persons)
    p = c + (1 - c) / (1 + np.exp(-a * (theta[:, None] - b)))
    responses = (rng.random((persons, items)) < p).astype(float)
    responses[rng.random((persons, items)) < missing] = np.nan
    return responses, a, b, c, theta


@pytest.fixture(scope="module")
def simulated():
    return simulate_2pl(seed=20261126, persons=3000, items=20, missing=0.2)


@pytest.fixture(scope="module")
def simulated_2pl(simulated) -> CalibrationResult:
    return calibrate(ResponseData(simulated[0]), "2pl")


def true_items(a, b, c) -> list[ItemParameters]:
    return [ItemParameters(f"i{k}", a[k], b[k], c[k]) for k in range(len(a))]


# --------------------------------------------------------------------------- LSAT6


def test_lsat6_table_has_32_patterns_summing_to_1000(lsat6):
    """The LSAT6 file holds the 32 distinct patterns with frequencies summing to 1000."""
    patterns = {tuple(row) for row in lsat6.responses.astype(int).tolist()}
    assert (lsat6.n_items, len(patterns), lsat6.weights.sum()) == (5, 32, 1000)
    proportions = lsat6.responses.T @ lsat6.weights / 1000
    np.testing.assert_allclose(proportions, [0.924, 0.709, 0.553, 0.763, 0.870])


def test_lsat6_2pl_matches_ltm(lsat6_2pl):
    """The 2PL fit of LSAT6 matches ltm(LSAT ~ z1): a, b and log-likelihood within 0.01."""
    assert lsat6_2pl.converged
    np.testing.assert_allclose(lsat6_2pl.b, LSAT6_B, atol=0.01)
    np.testing.assert_allclose(lsat6_2pl.a, LSAT6_A, atol=0.01)
    assert lsat6_2pl.log_likelihood == pytest.approx(LSAT6_LOGLIK_2PL, abs=0.01)
    assert np.all(lsat6_2pl.c == 0)


def test_lsat6_2pl_standard_errors_are_sane(lsat6_2pl):
    """SEs (observed information) are finite and positive; regressed at this module's values."""
    se_a = np.array([item.se_a for item in lsat6_2pl.items])
    se_b = np.array([item.se_b for item in lsat6_2pl.items])
    assert np.all(np.isfinite(se_a) & (se_a > 0) & np.isfinite(se_b) & (se_b > 0))
    assert np.argmin(se_b) == 2
    np.testing.assert_allclose(se_a, [0.258, 0.187, 0.233, 0.185, 0.210], atol=0.01)


def test_lsat6_rasch_is_one_common_discrimination(lsat6, lsat6_2pl):
    """Rasch (ltm convention): one common slope, theta ~ N(0, 1); values are regressed."""
    rasch = calibrate(lsat6, "rasch")
    assert rasch.converged
    assert np.ptp(rasch.a) == 0
    assert rasch.a[0] == pytest.approx(LSAT6_RASCH_A, abs=0.001)
    np.testing.assert_allclose(rasch.b, LSAT6_RASCH_B, atol=0.002)
    assert rasch.log_likelihood == pytest.approx(LSAT6_RASCH_LOGLIK, abs=0.001)
    assert rasch.log_likelihood < lsat6_2pl.log_likelihood  # nested in the 2PL


def test_lsat6_rasch_is_stable_across_quadrature(lsat6):
    """The Rasch fit does not depend on the number of quadrature points (41 vs 61)."""
    coarse = calibrate(lsat6, "rasch", quadrature_points=41)
    fine = calibrate(lsat6, "rasch", quadrature_points=61)
    np.testing.assert_allclose(coarse.b, fine.b, atol=1e-3)
    assert coarse.log_likelihood == pytest.approx(fine.log_likelihood, abs=1e-3)


def test_weights_count_as_repeated_rows(lsat6, lsat6_2pl):
    """A pattern of frequency k fits exactly like k identical rows."""
    rows = np.repeat(lsat6.responses, lsat6.weights.astype(int), axis=0)
    expanded = calibrate(ResponseData(rows), "2pl")
    np.testing.assert_allclose(expanded.b, lsat6_2pl.b, atol=1e-6)
    assert expanded.log_likelihood == pytest.approx(lsat6_2pl.log_likelihood, abs=1e-6)


def test_unpresented_items_contribute_nothing(lsat6, lsat6_2pl):
    """Adding persons who were presented no item changes neither estimates nor likelihood."""
    blank = np.full((7, 5), np.nan)
    padded = ResponseData(np.vstack([lsat6.responses, blank]), np.append(lsat6.weights, np.ones(7)))
    result = calibrate(padded, "2pl")
    np.testing.assert_allclose(result.a, lsat6_2pl.a, atol=1e-6)
    assert result.log_likelihood == pytest.approx(lsat6_2pl.log_likelihood, abs=1e-6)


def test_calibration_result_is_json(lsat6_2pl):
    """as_dict gives plain JSON (no NaN, no numpy types) that reads back as the same items."""
    document = json.loads(json.dumps(lsat6_2pl.as_dict(), allow_nan=False))
    assert list(document["items"]) == [f"item{n}" for n in range(1, 6)]
    read_back = parameters_from_document(document)
    np.testing.assert_allclose([item.a for item in read_back], lsat6_2pl.a)
    np.testing.assert_allclose([item.b for item in read_back], lsat6_2pl.b)
    scaled = parameters_from_document(json.loads(json.dumps(lsat6_2pl.as_dict(1.702))))
    np.testing.assert_allclose([item.a for item in scaled], lsat6_2pl.a)


def test_bad_calibration_documents_are_refused():
    """A document without an items mapping, with a bad D or a bad slope is a ValueError."""
    good = {"model": "2pl", "D": 1, "items": {"q1": {"a": 1.0, "b": 0.0}}}
    assert parameters_from_document(good)[0].item_id == "q1"
    for bad, message in (
        ({**good, "items": [{"a": 1, "b": 0}]}, "needs 'items'"),
        ({**good, "D": 0}, "D must be"),
        ({**good, "items": {"q1": {"a": -1, "b": 0}}}, "need a > 0"),
        ({**good, "items": {"q1": {"a": "x", "b": 0}}}, "needs numbers"),
        ({**good, "items": {}}, "no items"),
    ):
        with pytest.raises(ValueError, match=message):
            parameters_from_document(bad)


def test_cycle_limit_reports_not_converged(lsat6):
    """Stopping at max_cycles before the tolerance is met reports converged False."""
    result = calibrate(lsat6, "2pl", max_cycles=3)
    assert (result.iterations, result.converged) == (3, False)


def test_calibrate_refuses_unknown_model_and_constant_item(lsat6):
    """An unknown model, or an item everyone got right, is refused with a clear message."""
    with pytest.raises(ValueError, match="unknown model"):
        calibrate(lsat6, "4pl")  # type: ignore[arg-type]
    constant = np.array([[1, 0], [1, 1], [1, 0]], dtype=float)
    with pytest.raises(ValueError, match=r"'item1'.*every response is 1"):
        calibrate(ResponseData(constant), "2pl")


# --------------------------------------------------------------------------- LSAT7
# LSAT7: Bock & Lieberman (1970), section 7 of the LSAT, 1000 persons, 5 items, 32
# patterns. tests/data/lsat7.csv holds the "Ob7" frequencies of the bock table in the R
# package psych (data(bock): bock.table; as CSV in vincentarelbundock/Rdatasets,
# csv/psych/bock.table.csv, whose "Ob6" column is tests/data/lsat6.csv). The R package
# ltm ships section VI only (its LSAT), so it publishes no ltm(LSAT7 ~ z1) output; the
# reference is mirt's 2PL, the same model and metric as ltm's (logistic with D = 1,
# theta ~ N(0, 1), marginal ML by EM, 61 quadrature points): mirt(expand.table(LSAT7), 1)
# in mirt's reference pages, https://philchalmers.github.io/mirt/reference/LSAT7.html
# (log-likelihood -2658.805, item proportions, coef to 3 decimals) and
# https://philchalmers.github.io/mirt/reference/PLCI.mirt.html (a1, d to 7 decimals).
# ltm's IRT parametrisation (coef(mod, IRTpars = TRUE) in mirt) has b = -d / a1:
# -1.879, -0.748, -1.058, -0.635, -2.520.
LSAT7_A = [0.9879254, 1.0808847, 1.7058006, 0.7651853, 0.7357980]
LSAT7_D = [1.8560605, 0.8079786, 1.8042187, 0.4859966, 1.8545127]
LSAT7_B = [-d / a for a, d in zip(LSAT7_A, LSAT7_D, strict=True)]
LSAT7_LOGLIK_2PL = -2658.805
LSAT7_PROPORTIONS = [0.828, 0.658, 0.772, 0.606, 0.843]


@pytest.fixture(scope="module")
def lsat7() -> ResponseData:
    return read_response_csv(DATA / "lsat7.csv")


def test_lsat7_table_has_the_published_proportions(lsat7):
    """The LSAT7 file holds 32 patterns of 1000 persons with mirt's item proportions."""
    patterns = {tuple(row) for row in lsat7.responses.astype(int).tolist()}
    assert (lsat7.n_items, len(patterns), lsat7.weights.sum()) == (5, 32, 1000)
    np.testing.assert_allclose(lsat7.responses.T @ lsat7.weights / 1000, LSAT7_PROPORTIONS)


def test_lsat7_2pl_matches_mirt(lsat7):
    """The 2PL fit of LSAT7 matches mirt's published a, b and log-likelihood within 0.01."""
    result = calibrate(lsat7, "2pl")
    assert result.converged
    np.testing.assert_allclose(result.a, LSAT7_A, atol=0.01)
    np.testing.assert_allclose(result.b, LSAT7_B, atol=0.01)
    assert result.log_likelihood == pytest.approx(LSAT7_LOGLIK_2PL, abs=0.01)
    assert np.all(result.c == 0)


# --------------------------------------------------------------------------- simulated


def test_2pl_recovers_simulated_parameters(simulated, simulated_2pl):
    """3000 x 20 with 20% missing by design: a and b recovered (r > 0.95, small RMSE)."""
    _, a, b, _, _ = simulated
    assert simulated_2pl.converged
    assert np.corrcoef(simulated_2pl.a, a)[0, 1] > 0.95
    assert np.corrcoef(simulated_2pl.b, b)[0, 1] > 0.99
    assert np.sqrt(np.mean((simulated_2pl.a - a) ** 2)) < 0.15
    assert np.sqrt(np.mean((simulated_2pl.b - b) ** 2)) < 0.1


def test_rasch_runs_on_missing_by_design_data(simulated):
    """The Rasch model converges on the simulated data and orders items as the truth."""
    result = calibrate(ResponseData(simulated[0]), "rasch")
    assert result.converged
    assert np.corrcoef(result.b, simulated[2])[0, 1] > 0.95


def test_3pl_keeps_guessing_in_range():
    """The 3PL (Beta(5, 17) prior on c) converges with every c in [0, 0.5]."""
    responses, _, b, c, _ = simulate_2pl(seed=7, persons=3000, items=20, guessing=(0.1, 0.3))
    result = calibrate(ResponseData(responses), "3pl")
    assert result.converged
    assert np.all((result.c >= 0) & (result.c <= 0.5))
    assert np.corrcoef(result.b, b)[0, 1] > 0.95
    assert abs(result.c.mean() - c.mean()) < 0.05
    assert np.all([np.isfinite(item.se_c) for item in result.items])


# --------------------------------------------------------------------------- ability


@pytest.fixture(scope="module")
def ability_sample():
    responses, a, b, c, theta = simulate_2pl(seed=11, persons=2000, items=30)
    return responses, true_items(a, b, c), theta


@pytest.mark.parametrize("method", ["eap", "map", "mle"])
def test_abilities_track_true_theta(ability_sample, method):
    """EAP, MAP and (finite) MLE abilities correlate > 0.9 with the true thetas."""
    responses, items, theta = ability_sample
    estimates = estimate_ability(responses, items, method)
    finite = np.isfinite(estimates.theta)
    assert finite.mean() > 0.98
    assert np.corrcoef(estimates.theta[finite], theta[finite])[0, 1] > 0.9


def test_abilities_from_calibrated_items_track_true_theta(simulated, simulated_2pl):
    """EAP from the calibrated items (about 16 of 20 items seen) correlates > 0.85."""
    estimates = estimate_ability(ResponseData(simulated[0]), simulated_2pl, "eap")
    assert np.corrcoef(estimates.theta, simulated[4])[0, 1] > 0.85


def test_mle_all_right_and_all_wrong_are_infinite(lsat6_2pl):
    """MLE of an all-right (all-wrong) pattern is +inf (-inf) with a status; EAP is finite."""
    patterns = np.array([[1, 1, 1, 1, 1], [0, 0, 0, 0, 0], [1, np.nan, 1, 1, 1], [1, 0, 1, 1, 1]])
    mle = estimate_ability(patterns, lsat6_2pl, "mle")
    assert mle.status == ("all_right", "all_wrong", "all_right", "ok")
    assert mle.theta[0] == np.inf and mle.theta[1] == -np.inf and mle.se[0] == np.inf
    assert np.isfinite(mle.theta[3]) and np.isfinite(mle.se[3])
    assert mle.as_dict()["theta"][:3] == [None, None, None]
    eap = estimate_ability(patterns, lsat6_2pl, "eap")
    assert np.all(np.isfinite(eap.theta)) and eap.theta[0] > eap.theta[3] > eap.theta[1]


def test_mle_unbounded_3pl_pattern_is_flagged(lsat6):
    """A 3PL pattern whose likelihood rises without bound gets status "unbounded", -inf."""
    result = calibrate(lsat6, "3pl")
    mle = estimate_ability(np.array([[0, 1, 0, 0, 0]]), result, "mle")
    assert (mle.status, mle.theta[0], mle.se[0]) == (("unbounded",), -np.inf, np.inf)


def test_mle_maximises_likelihood_with_information_se(lsat6_2pl):
    """The MLE solves sum a (u - P) = 0 and its SE is 1 / sqrt(test information)."""
    pattern = np.array([[1, 0, 0, 1, 1]])
    mle = estimate_ability(pattern, lsat6_2pl, "mle")
    a, b = lsat6_2pl.a, lsat6_2pl.b
    p = 1 / (1 + np.exp(-a * (mle.theta[0] - b)))
    assert np.sum(a * (pattern[0] - p)) == pytest.approx(0, abs=1e-8)
    info = information_of_test(mle.theta[0], lsat6_2pl)[0]
    assert mle.se[0] == pytest.approx(1 / np.sqrt(info))


def test_eap_posterior_sd_shrinks_with_more_items(ability_sample):
    """The EAP posterior SD is below the prior SD and smaller with 30 items than with 5."""
    responses, items, _ = ability_sample
    full = estimate_ability(responses[:50], items, "eap")
    short = estimate_ability(responses[:50, :5], items[:5], "eap")
    assert np.all(full.se < short.se) and np.all(short.se < 1)


def test_item_information_matches_birnbaum():
    """2PL information peaks at b with a^2 / 4; 3PL peaks at b + ln((1 + sqrt(1 + 8c)) / 2) / a."""
    items = [ItemParameters("x", 1.5, 0.3), ItemParameters("y", 1.2, -0.5, 0.2)]
    assert item_information(0.3, items)[0, 0] == pytest.approx(1.5**2 / 4)
    grid = np.linspace(-3, 3, 60001)
    peak = grid[np.argmax(item_information(grid, items)[:, 1])]
    assert peak == pytest.approx(-0.5 + np.log((1 + np.sqrt(1 + 8 * 0.2)) / 2) / 1.2, abs=1e-3)
    assert information_of_test([0.0], items)[0] == pytest.approx(item_information(0.0, items).sum())


# --------------------------------------------------------------------------- CSV


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "responses.csv"
    path.write_text(text, encoding="utf-8")
    return path


def test_csv_reads_empty_cells_as_not_presented(tmp_path):
    """Empty cells are NaN (not presented); without a weight column every row weighs 1."""
    data = read_response_csv(write(tmp_path, "q1,q2,q3\n1,,0\n0,1,\n"))
    assert data.item_ids == ("q1", "q2", "q3")
    np.testing.assert_array_equal(data.responses, [[1, np.nan, 0], [0, 1, np.nan]])
    np.testing.assert_array_equal(data.weights, [1, 1])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty file"),
        ("q1,q2\n", "no response rows"),
        ("q1,,q3\n1,0,1\n", "header column 2 is empty"),
        ("q1,q1\n1,0\n", "duplicate header column"),
        ("weight\n3\n", "no item columns"),
        ("q1,q2\n1,2\n", r"line 2, column 'q2': expected 1, 0 or empty, got '2'"),
        ("q1,q2\n1,yes\n", "got 'yes'"),
        ("q1,q2\n1\n", "line 2 has 1 cells, header has 2"),
        ("q1,weight\n1,-2\n", "column 'weight': must be finite and >= 0"),
        ("q1,weight\n1,many\n", "column 'weight': expected a number"),
    ],
)
def test_csv_refuses_bad_input(tmp_path, text, message):
    """A malformed response CSV is refused with a message naming the problem."""
    with pytest.raises(ValueError, match=message):
        read_response_csv(write(tmp_path, text))


def test_response_data_refuses_non_binary_values():
    """ResponseData accepts only 1, 0 and NaN."""
    with pytest.raises(ValueError, match="1, 0 or NaN"):
        ResponseData(np.array([[1.0, 0.5]]))


def test_closed_form_2pl_hessian_equals_the_difference_hessian(lsat6):
    """Louis's closed-form information equals central differences of the exact gradient."""
    from scoring.irt import _Calibrator

    result = calibrate(lsat6, "2pl")
    calibrator = _Calibrator(lsat6, "2pl", 61)
    vector = np.concatenate([result.a, -result.a * result.b])
    exact, numeric = calibrator.louis_hessian(vector), calibrator.difference_hessian(vector)
    np.testing.assert_allclose(exact, numeric, rtol=1e-6, atol=1e-6)
