"""IRT scale linking (mean-mean, mean-sigma, Haebara, Stocking-Lord).

Checked on known transformations with a seeded RNG, and against Kolen's STUIRT
example 1: the 12 common items of Kolen & Brennan's (2004, Test Equating, Scaling, and
Linking, 2nd ed.) Table 6.5 (3PL, D = 1.7), with the Form X / Form Y ability
distributions on 10 quadrature points and symmetric criteria. Expected values are the
STUIRT output as recorded in jMetrik's ``IrtScaleLinkingTest.linkingTest3PL``
(J. P. Meyer, psychometrics library): mean-sigma A = 1.168891, B = -0.515543;
mean-mean A = 1.217266, B = -0.557156; Haebara A = 1.067800, B = -0.471281 (criterion
/ 12 = 0.001506); Stocking-Lord A = 1.083417, B = -0.487619 (criterion 0.009666).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from scoring.equating import GRID_WEIGHTS, METHODS, THETA_GRID, Linking, link, read_quadrature
from scoring.irt import CalibrationResult, ItemParameters

TRUE_A, TRUE_B = 1.2, -0.4

# Kolen & Brennan Table 6.5 common items (a, b, c on the D = 1.7 metric): STUIRT example 1
KB_FORM_X = [
    (0.4551, -0.7101, 0.2087),
    (0.5839, -0.8567, 0.2038),
    (0.7544, 0.0212, 0.1600),
    (0.6633, 0.0506, 0.1240),
    (1.0690, 0.9610, 0.2986),
    (0.9672, 0.1950, 0.0535),
    (0.3479, 2.2768, 0.1489),
    (1.4579, 1.0241, 0.2453),
    (1.8811, 1.4062, 0.1992),
    (0.7020, 2.2401, 0.0853),
    (1.4080, 1.5556, 0.0789),
    (1.2993, 2.1589, 0.1075),
]
KB_FORM_Y = [
    (0.4416, -1.3349, 0.1559),
    (0.5730, -1.3210, 0.1913),
    (0.5987, -0.7098, 0.1177),
    (0.6041, -0.3539, 0.0818),
    (0.9902, 0.5320, 0.3024),
    (0.8081, -0.1156, 0.0648),
    (0.4140, 2.5538, 0.2410),
    (1.3554, 0.5811, 0.2243),
    (1.0417, 0.9392, 0.1651),
    (0.6336, 1.8960, 0.0794),
    (1.1347, 1.0790, 0.0630),
    (0.9255, 2.1337, 0.1259),
]
KB_POINTS = [-4.0, -3.111, -2.222, -1.333, -0.4444, 0.4444, 1.333, 2.222, 3.111, 4.0]
KB_WEIGHTS_X = [
    0.0001008,
    0.002760,
    0.03021,
    0.1420,
    0.3149,
    0.3158,
    0.1542,
    0.03596,
    0.003925,
    0.0001862,
]
KB_WEIGHTS_Y = [
    0.0001173,
    0.003242,
    0.03449,
    0.1471,
    0.3148,
    0.3110,
    0.1526,
    0.03406,
    0.002510,
    0.0001116,
]
STUIRT_EXAMPLE_1 = {  # method: (A, B, tolerance on A and B)
    "mean-sigma": (1.168891, -0.515543, 1e-6),
    "mean-mean": (1.217266, -0.557156, 1e-6),
    "haebara": (1.067800, -0.471281, 1e-5),
    "stocking-lord": (1.083417, -0.487619, 1e-6),
}


def make_params(ids, a, b, c=None, model="3pl"):
    """Return a calibration document for items ``ids`` with parameters a, b, c (D = 1)."""
    c = np.zeros(len(ids)) if c is None else c
    items = {
        i: {"a": float(aj), "b": float(bj), "c": float(cj), "se_a": 0.1, "se_b": 0.2}
        for i, aj, bj, cj in zip(ids, a, b, c, strict=True)
    }
    return {"model": model, "D": 1.0, "loglik": -1.0, "items": items}


def make_forms(seed: int, noise: float = 0.0, anchors: int = 12, unique: int = 8):
    """Return (form X, form Y, true anchor parameters on Y's scale) for A=1.2, B=-0.4.

    Y's anchors carry the true parameters; X's are the same items on X's scale
    (a_X = A a_Y, b_X = (b_Y - B) / A). With ``noise``, both forms' anchor a and b get
    independent estimation error of that SD (relative for a).
    """
    rng = np.random.default_rng(seed)
    a = rng.uniform(0.6, 2.0, anchors)
    b = rng.uniform(-2.0, 2.0, anchors)
    c = rng.uniform(0.05, 0.25, anchors)
    ids = [f"anchor{j}" for j in range(anchors)]

    def noisy(values, relative=False):
        error = rng.normal(0.0, noise, values.shape)
        return values * np.exp(error) if relative else values + error

    y = make_params(
        ids + [f"y{j}" for j in range(unique)],
        np.append(noisy(a, True), rng.uniform(0.6, 2.0, unique)),
        np.append(noisy(b), rng.uniform(-2.0, 2.0, unique)),
        np.append(c, rng.uniform(0.05, 0.25, unique)),
    )
    x = make_params(
        [f"x{j}" for j in range(unique)] + ids,
        np.append(rng.uniform(0.6, 2.0, unique), noisy(a * TRUE_A, True)),
        np.append(rng.uniform(-2.0, 2.0, unique), noisy((b - TRUE_B) / TRUE_A)),
        np.append(rng.uniform(0.05, 0.25, unique), c),
    )
    return x, y, (a, b, c)


def anchor_tcc(params, anchors):
    """Return the test characteristic curve of ``anchors`` on THETA_GRID."""
    total = np.zeros_like(THETA_GRID)
    for item_id in anchors:
        item = params["items"][item_id]
        z = item["a"] * (THETA_GRID - item["b"])
        total += item["c"] + (1 - item["c"]) / (1 + np.exp(-z))
    return total


def tcc_error(linking: Linking, x, y) -> float:
    """Return the N(0, 1)-weighted mean squared anchor-TCC gap after linking X to Y."""
    moved = linking.transform(x)
    gap = anchor_tcc(moved, linking.anchors) - anchor_tcc(y, linking.anchors)
    return float(GRID_WEIGHTS @ gap**2)


def icc_error(linking: Linking, x, y) -> float:
    """Return the Haebara criterion: weighted squared anchor-ICC gaps, summed."""
    moved = linking.transform(x)
    return float(
        sum(
            GRID_WEIGHTS @ (anchor_tcc(moved, [item_id]) - anchor_tcc(y, [item_id])) ** 2
            for item_id in linking.anchors
        )
    )


@pytest.mark.parametrize("method", METHODS)
def test_exact_transformation_is_recovered(method):
    """When Y's anchors are an exact linear transform of X's, every method returns it."""
    x, y, _ = make_forms(seed=1)
    linking = link(x, y, method)
    tolerance = 1e-12 if method in ("mean-mean", "mean-sigma") else 1e-6
    assert pytest.approx(TRUE_A, abs=tolerance) == linking.A
    assert pytest.approx(TRUE_B, abs=tolerance) == linking.B
    assert linking.anchors == tuple(f"anchor{j}" for j in range(12))


def test_transform_puts_every_item_of_x_on_y_scale():
    """transform gives a/A, A b + B, c unchanged (SEs se_a/A, A se_b) for every X item."""
    x, y, _ = make_forms(seed=2)
    linking = link(x, y, "mean-sigma")
    moved = linking.transform(x)
    assert len(moved["items"]) == len(x["items"])
    assert moved["model"] == x["model"]
    assert moved["loglik"] == x["loglik"]
    for item_id, before in x["items"].items():
        after = moved["items"][item_id]
        assert after["a"] == pytest.approx(before["a"] / TRUE_A)
        assert after["b"] == pytest.approx(TRUE_A * before["b"] + TRUE_B)
        assert after["c"] == before["c"]
        assert after["se_a"] == pytest.approx(before["se_a"] / TRUE_A)
        assert after["se_b"] == pytest.approx(before["se_b"] * TRUE_A)
    for item_id, item in moved["items"].items():
        if item_id.startswith("anchor"):
            assert item["a"] == pytest.approx(y["items"][item_id]["a"])
            assert item["b"] == pytest.approx(y["items"][item_id]["b"])
    assert x["items"]["x0"]["a"] != moved["items"]["x0"]["a"]  # input left as it was


def test_transform_theta_is_linear():
    """transform_theta maps theta_X to A theta_X + B."""
    x, y, _ = make_forms(seed=3)
    linking = link(x, y, "mean-mean")
    assert linking.transform_theta([0.0, 1.0]) == pytest.approx([TRUE_B, TRUE_A + TRUE_B])


@pytest.mark.parametrize("seed", range(5))
def test_methods_agree_under_noise(seed):
    """With estimation noise, the four methods give close A and B near the truth."""
    x, y, _ = make_forms(seed=seed, noise=0.05)
    results = {method: link(x, y, method) for method in METHODS}
    slopes = np.array([r.A for r in results.values()])
    intercepts = np.array([r.B for r in results.values()])
    assert np.ptp(slopes) < 0.15
    assert np.ptp(intercepts) < 0.15
    assert np.all(np.abs(slopes - TRUE_A) < 0.15)
    assert np.all(np.abs(intercepts - TRUE_B) < 0.15)


@pytest.mark.parametrize("seed", range(5))
def test_each_characteristic_curve_method_beats_the_others_on_its_criterion(seed):
    """One-directional Stocking-Lord has the smallest anchor-TCC gap, Haebara the ICC's."""
    x, y, _ = make_forms(seed=seed, noise=0.05)
    linkings = {method: link(x, y, method, symmetric=False) for method in METHODS}
    tcc = {method: tcc_error(linking, x, y) for method, linking in linkings.items()}
    icc = {method: icc_error(linking, x, y) for method, linking in linkings.items()}
    for method in METHODS:
        assert tcc["stocking-lord"] <= tcc[method] + 1e-15
        assert icc["haebara"] <= icc[method] + 1e-15


def test_characteristic_curve_methods_recover_the_tcc_better_on_average():
    """On average over 20 noisy replications, both curve methods beat mean-sigma on the TCC."""
    # per replication Haebara may not (it minimises the ICC gap, not the TCC gap)
    gaps = {method: [] for method in METHODS}
    for seed in range(20):
        x, y, _ = make_forms(seed=seed, noise=0.05)
        for method in METHODS:
            gaps[method].append(tcc_error(link(x, y, method), x, y))
    mean_gap = {method: np.mean(values) for method, values in gaps.items()}
    assert mean_gap["haebara"] <= mean_gap["mean-sigma"]
    assert mean_gap["stocking-lord"] <= mean_gap["mean-sigma"]


def test_stocking_lord_criterion_is_minimal():
    """The one-directional Stocking-Lord criterion is the TCC gap; no nearby (A, B) is lower."""
    x, y, _ = make_forms(seed=7, noise=0.05)
    best = link(x, y, "stocking-lord", symmetric=False)
    assert best.criterion == pytest.approx(tcc_error(best, x, y), rel=1e-9)
    for d_a, d_b in [(1e-3, 0), (-1e-3, 0), (0, 1e-3), (0, -1e-3)]:
        nearby = Linking(best.method, best.model, best.A + d_a, best.B + d_b, best.anchors)
        assert tcc_error(nearby, x, y) > best.criterion


def test_accepts_calibration_result_and_serialises():
    """A CalibrationResult is accepted like its JSON, and as_dict is JSON-serialisable."""
    x, y, _ = make_forms(seed=4)
    result_x = CalibrationResult(
        model="3pl",
        items=tuple(
            ItemParameters(item_id, i["a"], i["b"], i["c"], i["se_a"], i["se_b"])
            for item_id, i in x["items"].items()
        ),
        log_likelihood=-1.0,
        iterations=1,
        converged=True,
    )
    linking = link(result_x, y, "haebara")
    assert pytest.approx(TRUE_A, abs=1e-6) == linking.A
    data = json.loads(json.dumps(linking.as_dict()))
    assert data["method"] == "haebara"
    assert data["model"] == "3pl"
    assert data["A"] == pytest.approx(TRUE_A, abs=1e-6)
    assert data["B"] == pytest.approx(TRUE_B, abs=1e-6)
    assert len(data["anchors"]) == 12
    assert data["criterion"] == pytest.approx(0.0, abs=1e-12)


def kb_params(rows):
    """Return calibrate JSON for K&B's common items, a rescaled from D = 1.7 to D = 1."""
    ids = [f"common{j + 1}" for j in range(len(rows))]
    a, b, c = (np.array(column) for column in zip(*rows, strict=True))
    return make_params(ids, 1.7 * a, b, c)


@pytest.mark.parametrize("method", METHODS)
def test_stuirt_example_1_is_reproduced(method):
    """Kolen & Brennan's Table 6.5 anchors give STUIRT example 1's A and B."""
    linking = link(
        kb_params(KB_FORM_X),
        kb_params(KB_FORM_Y),
        method,
        **read_quadrature(
            {"points": KB_POINTS, "x_weights": KB_WEIGHTS_X, "y_weights": KB_WEIGHTS_Y}
        ),
    )
    assert linking.as_dict()["symmetric"] is (method in ("haebara", "stocking-lord"))
    expected_a, expected_b, tolerance = STUIRT_EXAMPLE_1[method]
    assert abs(linking.A - expected_a) < tolerance
    assert abs(linking.B - expected_b) < tolerance
    if method == "haebara":
        assert round(linking.criterion / 12, 6) == 0.001506  # STUIRT divides by J
    if method == "stocking-lord":
        assert round(linking.criterion, 6) == 0.009666


def test_symmetric_criterion_differs_from_one_directional():
    """The symmetric criterion (the default) is not the one-directional one on real data."""
    x, y = kb_params(KB_FORM_X), kb_params(KB_FORM_Y)
    one_way = link(x, y, "stocking-lord", grid=(KB_POINTS, KB_WEIGHTS_Y), symmetric=False)
    both_ways = link(x, y, "stocking-lord", grid=(KB_POINTS, KB_WEIGHTS_Y))
    assert both_ways.symmetric and not one_way.symmetric
    assert abs(one_way.A - both_ways.A) > 1e-3


def test_bad_grids_are_refused():
    """A grid with mismatched or negative weights, or from_grid without symmetric, is refused."""
    x, y = kb_params(KB_FORM_X), kb_params(KB_FORM_Y)
    with pytest.raises(ValueError, match="as many weights"):
        link(x, y, "haebara", grid=([0.0, 1.0], [1.0]))
    with pytest.raises(ValueError, match="non-negative"):
        link(x, y, "haebara", grid=([0.0, 1.0], [1.0, -1.0]))
    with pytest.raises(ValueError, match="symmetric"):
        link(x, y, "haebara", symmetric=False, from_grid=(KB_POINTS, KB_WEIGHTS_X))
    with pytest.raises(ValueError, match="x_weights"):
        read_quadrature({"points": KB_POINTS, "y_weights": KB_WEIGHTS_Y})
    with pytest.raises(ValueError, match="numbers"):
        read_quadrature({"points": ["a"], "x_weights": [1], "y_weights": [1]})


def test_too_few_anchors_is_refused():
    """Fewer than two items with the same item_id in both forms is a ValueError."""
    x = make_params(["q1", "q2", "shared"], [1.0, 1.2, 0.8], [0.0, 1.0, -1.0])
    y = make_params(["shared", "r1", "r2"], [1.0, 1.1, 0.9], [-0.5, 0.5, 1.5])
    with pytest.raises(ValueError, match=r"at least 2 anchor items.*found 1"):
        link(x, y, "mean-sigma")
    y["items"]["other"] = y["items"].pop("shared")
    with pytest.raises(ValueError, match="found 0"):
        link(x, y, "stocking-lord")


def test_model_mismatch_is_refused():
    """Parameter sets of different models cannot be linked."""
    x, y, _ = make_forms(seed=5)
    x["model"] = "2pl"
    with pytest.raises(ValueError, match="different models"):
        link(x, y, "haebara")


def test_unknown_method_is_refused():
    """A method outside METHODS is a ValueError naming the known ones."""
    x, y, _ = make_forms(seed=6)
    with pytest.raises(ValueError, match=r"unknown method 'mean-median'.*stocking-lord"):
        link(x, y, "mean-median")  # type: ignore[arg-type]


def test_invalid_item_parameters_are_refused():
    """A non-positive slope, a missing b or items given as a list is a ValueError."""
    x, y, _ = make_forms(seed=8)
    x["items"]["x0"]["a"] = -1.0
    with pytest.raises(ValueError, match="need a > 0"):
        link(x, y, "mean-mean")
    x, y, _ = make_forms(seed=8)
    del y["items"]["y0"]["b"]
    with pytest.raises(ValueError, match="needs numbers a and b"):
        link(x, y, "mean-mean")
    with pytest.raises(ValueError, match="needs 'items'"):
        link({**x, "items": list(x["items"].values())}, y, "mean-mean")


def test_documents_in_another_metric_link_alike():
    """A document written with D = 1.702 (slopes a / 1.702) links like its D = 1 twin."""
    x, y, _ = make_forms(seed=10, noise=0.05)
    x_normal = {
        **x,
        "D": 1.702,
        "items": {k: {**v, "a": v["a"] / 1.702} for k, v in x["items"].items()},
    }
    for method in METHODS:
        plain, scaled = link(x, y, method), link(x_normal, y, method)
        assert pytest.approx(plain.A, abs=1e-9) == scaled.A
        assert pytest.approx(plain.B, abs=1e-9) == scaled.B


def test_equal_anchor_difficulties_are_refused_by_mean_sigma():
    """Mean-sigma refuses anchors whose difficulties do not vary (sd of b is 0)."""
    x = make_params(["p", "q"], [1.0, 1.5], [0.3, 0.3])
    y = make_params(["p", "q"], [0.8, 1.2], [0.1, 0.1])
    with pytest.raises(ValueError, match="sd of b is 0"):
        link(x, y, "mean-sigma")


def test_transform_refuses_another_model():
    """transform refuses parameters of a model other than the linking's."""
    x, y, _ = make_forms(seed=9)
    linking = link(x, y, "mean-mean")
    with pytest.raises(ValueError, match="model"):
        linking.transform({**x, "model": "2pl"})
