"""Computerised adaptive testing: selection, EAP updates, stopping, exposure, simulation."""

from __future__ import annotations

import csv
import json
from dataclasses import replace

import numpy as np
import pytest
import yaml

from scoring.cat import (
    STOP_MAX_ITEMS,
    STOP_POOL,
    STOP_SE,
    CatBank,
    CatConfig,
    calibrate_sympson_hetter,
    information,
    next_item,
    simulate,
    update_ability,
)
from scoring.errors import InvalidCatConfig
from scoring.irt import ItemParameters, estimate_ability, item_information

TOPICS = ("grammar", "vocabulary", "reading")


def synthetic_bank(n_items: int = 300, seed: int = 20261126, c: float = 0.0) -> CatBank:
    """A 2PL (or 3PL with constant c) bank: a ~ lognormal(0, 0.25), b ~ N(0, 1), 3 topics."""
    rng = np.random.default_rng(seed)
    return CatBank(
        tuple(f"item{j + 1:03d}" for j in range(n_items)),
        rng.lognormal(0.0, 0.25, n_items),
        rng.normal(0.0, 1.0, n_items),
        np.full(n_items, c),
        tuple(TOPICS[j % 3] for j in range(n_items)),
    )


@pytest.fixture(scope="module")
def bank() -> CatBank:
    return synthetic_bank()


@pytest.fixture(scope="module")
def thetas() -> np.ndarray:
    return np.random.default_rng(7).standard_normal(500)


def run(bank, thetas, seed=1, **settings):
    return simulate(bank, CatConfig.from_mapping(settings), thetas, np.random.default_rng(seed))


def test_simulation_recovers_ability(bank, thetas):
    """Stopping at SE 0.3, ability is recovered without bias and with RMSE near the SE."""
    result = run(bank, thetas, min_items=5, max_items=40, se_target=0.3)
    assert abs(result.bias) < 0.1
    assert result.rmse < 0.36
    assert abs(result.rmse - result.mean_se) < 0.06  # the reported SE is honest
    assert np.corrcoef(result.theta, result.true_theta)[0, 1] > 0.93
    assert result.mean_length < 25  # adaptive: far fewer items than a fixed form for SE 0.3


def test_simulation_is_reproducible_from_the_seed(bank, thetas):
    """The same seed gives the same tests; another seed gives other draws."""
    first = run(bank, thetas[:100], seed=3, exposure={"method": "randomesque", "k": 4})
    again = run(bank, thetas[:100], seed=3, exposure={"method": "randomesque", "k": 4})
    other = run(bank, thetas[:100], seed=4, exposure={"method": "randomesque", "k": 4})
    assert np.array_equal(first.administered, again.administered)
    assert np.array_equal(first.theta, again.theta)
    assert not np.array_equal(first.administered, other.administered)


def test_fixed_length_stopping(bank, thetas):
    """Without an SE target every test has exactly max_items items."""
    result = run(bank, thetas[:200], max_items=12, se_target=None)
    assert set(result.length) == {12}
    assert set(result.stop_reason) == {STOP_MAX_ITEMS}
    assert np.all(result.administered >= 0)
    assert all(len(set(row)) == 12 for row in result.administered)  # no item twice


def test_se_stopping_honours_target_and_minimum(bank, thetas):
    """A test stops once the SE reaches the target, never before min_items, at most max."""
    result = run(bank, thetas[:300], min_items=8, max_items=30, se_target=0.35)
    assert result.length.min() >= 8
    assert result.length.max() <= 30
    stopped_on_se = np.array([reason == STOP_SE for reason in result.stop_reason])
    assert stopped_on_se.mean() > 0.9
    assert np.all(result.se[stopped_on_se] <= 0.35)
    assert np.all(result.length[~stopped_on_se] == 30)
    # a looser target gives shorter tests
    looser = run(bank, thetas[:300], min_items=8, max_items=30, se_target=0.45)
    assert looser.mean_length < result.mean_length


def test_small_pool_is_exhausted(thetas):
    """A test longer than the pool ends when no item is left."""
    result = run(synthetic_bank(6), thetas[:20], max_items=10, se_target=None)
    assert set(result.stop_reason) == {STOP_POOL}
    assert set(result.length) == {6}


def test_content_targets_are_met(bank, thetas):
    """Each test follows the content shares: every category within one item of its target."""
    shares = {"grammar": 0.5, "vocabulary": 0.3, "reading": 0.2}
    result = run(bank, thetas[:200], max_items=20, se_target=None, content=shares)
    topics = np.array(bank.categories)
    for row in result.administered:
        given = topics[row[row >= 0]]
        for topic, share in shares.items():
            assert abs(np.sum(given == topic) - share * given.size) <= 1
    # variable length too: at every stopping point the counts stay within one item
    variable = run(bank, thetas[:200], min_items=5, max_items=30, se_target=0.3, content=shares)
    for row in variable.administered:
        given = topics[row[row >= 0]]
        for topic, share in shares.items():
            assert abs(np.sum(given == topic) - share * given.size) <= 1


def test_content_category_left_out_is_never_used(bank, thetas):
    """Items of a category without a target are not given."""
    result = run(
        bank, thetas[:50], max_items=10, se_target=None, content={"grammar": 0.5, "reading": 0.5}
    )
    given = np.array(bank.categories)[result.administered.ravel()]
    assert "vocabulary" not in set(given)


def test_randomesque_and_sympson_hetter_reduce_max_exposure(bank, thetas):
    """Plain maximum information overuses a few items; both exposure controls cut that."""
    settings = {"min_items": 5, "max_items": 30, "se_target": 0.3}
    plain = run(bank, thetas, **settings)
    randomesque = run(bank, thetas, **settings, exposure={"method": "randomesque", "k": 8})
    assert plain.max_exposure == 1.0  # everyone starts at theta 0 with the same item
    assert randomesque.max_exposure < 0.8
    assert randomesque.unused_share < plain.unused_share
    config = CatConfig.from_mapping(settings)
    found = calibrate_sympson_hetter(
        bank, config, 0.3, np.random.default_rng(11), simulees=500, rounds=8, tolerance=0.05
    )
    assert found.max_exposure[0] == 1.0
    assert min(found.max_exposure) < 0.4
    assert all(0 < k <= 1 for k in found.parameters.values())
    controlled = simulate(
        bank,
        replace(config, exposure="sympson-hetter", exposure_parameters=found.parameters),
        thetas,
        np.random.default_rng(12),
    )
    assert controlled.max_exposure < 0.4
    assert abs(controlled.bias) < 0.1  # at little cost in precision
    assert controlled.rmse < plain.rmse + 0.05


def test_sympson_hetter_lottery_sets_items_aside(bank):
    """An item with K near 0 is (almost) never given, however informative."""
    config = CatConfig(max_items=5, se_target=None)
    best = next_item(config, bank, [], [], np.random.default_rng(0))
    assert best is not None
    excluded_by_lottery = replace(
        config,
        exposure="sympson-hetter",
        exposure_parameters={bank.item_ids[best]: 1e-9},
    )
    result = simulate(bank, excluded_by_lottery, np.zeros(200), np.random.default_rng(1))
    assert result.exposure_rate[best] == 0.0
    assert result.selection_rate[best] == 1.0  # it came up first for everyone


def test_update_ability_matches_irt_eap(bank):
    """The CAT's EAP equals irt.estimate_ability's EAP (checked there against ltm)."""
    items = [3, 17, 42, 99, 150, 201, 250]
    pattern = [1, 1, 0, 1, 0, 0, 1]
    ability = update_ability(CatConfig(), bank, items, pattern)
    params = [ItemParameters(bank.item_ids[j], bank.a[j], bank.b[j]) for j in items]
    reference = estimate_ability([pattern], params, "eap")
    assert ability.theta == pytest.approx(reference.theta[0], abs=1e-10)
    assert ability.se == pytest.approx(reference.se[0], abs=1e-10)
    by_id = update_ability(CatConfig(), bank, [bank.item_ids[j] for j in items], pattern)
    assert by_id == ability
    assert update_ability(CatConfig(), bank, [], []).se == pytest.approx(1.0)


def test_information_matches_irt():
    """Item information is Birnbaum's, as in scoring.irt (3PL included)."""
    bank = synthetic_bank(20, c=0.2)
    params = [
        ItemParameters(i, a, b, c)
        for i, a, b, c in zip(*map(list, (bank.item_ids, bank.a, bank.b, bank.c)), strict=True)
    ]
    theta = np.array([-2.0, 0.0, 1.5])
    assert np.allclose(information(theta, bank), item_information(theta, params))


def test_next_item_is_the_most_informative_and_stops(bank):
    """Without exposure control the next item maximises information at the current EAP."""
    config = CatConfig(min_items=2, max_items=4, se_target=None)
    rng = np.random.default_rng(0)
    first = next_item(config, bank, [], [], rng)
    assert first == int(np.argmax(information(0.0, bank)[0]))
    theta = update_ability(config, bank, [first], [1]).theta
    second = next_item(config, bank, [first], [1], rng)
    info = information(theta, bank)[0]
    info[first] = -np.inf
    assert second == int(np.argmax(info))
    assert next_item(config, bank, [first, second, 5, 6], [1, 0, 1, 0], rng) is None
    chosen = next_item(config, bank, [first], [1], rng, excluded=[second])
    assert chosen not in (first, second)


def test_next_item_stops_on_se(bank):
    """Once the SE is at the target (and min_items reached), there is no next item."""
    config = CatConfig(min_items=1, max_items=50, se_target=0.99)
    assert next_item(config, bank, [0], [1], np.random.default_rng(0)) is None


def test_bank_from_calibration_documents():
    """Both calibration layouts are read; D is folded into the slopes; topics kept."""
    listed = CatBank.from_calibration(
        {"model": "2pl", "items": [{"item_id": "x", "a": 1.2, "b": 0.5}]}
    )
    assert listed.item_ids == ("x",) and listed.c[0] == 0.0
    mapped = CatBank.from_calibration(
        {
            "model": "3pl",
            "D": 1.702,
            "items": {
                "x": {"a": 1.0, "b": 0.5, "c": 0.2, "topic": "grammar"},
                "y": {"a": 0.5, "b": -1.0, "c": 0.1, "topic": "reading"},
            },
        }
    )
    assert mapped.a.tolist() == pytest.approx([1.702, 0.851])
    assert mapped.categories == ("grammar", "reading")


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        ({"items": {}}, "no items"),
        ({"items": [{"a": 1, "b": 0}]}, "needs an item_id"),
        ({"items": {"x": {"a": -1, "b": 0}}}, "a > 0"),
        ({"items": {"x": {"a": 1, "b": "hard"}}}, "needs numbers"),
        ({"items": {"x": {"a": 1, "b": 0, "topic": "t"}, "y": {"a": 1, "b": 0}}}, "category"),
        ({"D": 0, "items": {"x": {"a": 1, "b": 0}}}, "D must be"),
        ([], "mapping"),
    ],
)
def test_bad_banks_are_refused(document, problem):
    """A bank that cannot be used is refused with the reason."""
    with pytest.raises(InvalidCatConfig, match=problem):
        CatBank.from_calibration(document)


@pytest.mark.parametrize(
    ("settings", "problem"),
    [
        ({"max_items": 0}, "max_items"),
        ({"min_items": 10, "max_items": 5}, "min_items"),
        ({"se_target": -0.1}, "se_target"),
        ({"se_target": "small"}, "se_target must be a number"),
        ({"selection": "random"}, "selection"),
        ({"exposure": {"method": "lottery"}}, "exposure.method"),
        ({"exposure": {"method": "randomesque", "k": 0}}, "exposure.k"),
        ({"exposure": {"method": "none", "k": 3}}, "belongs to the randomesque"),
        ({"exposure": {"method": "sympson-hetter", "parameters": {"x": 1.5}}}, r"\(0, 1\]"),
        ({"content": {"grammar": 0.5, "reading": 0.2}}, "add up to 1"),
        ({"content": {"grammar": "half"}}, "content must map"),
        ({"prior": {"mean": 0, "sd": 0}}, "prior.sd"),
        ({"initial_theta": 12}, "initial_theta"),
        ({"quadrature_points": 2}, "quadrature_points"),
        ({"max_item": 20}, "unknown key 'max_item'"),
        ("fast", "must be a mapping"),
    ],
)
def test_bad_configs_are_refused(settings, problem):
    """Every configuration mistake is named."""
    with pytest.raises(InvalidCatConfig, match=problem):
        CatConfig.from_mapping(settings)


def test_config_round_trips_through_its_mapping():
    """as_dict gives back what from_mapping reads."""
    config = CatConfig.from_mapping(
        {
            "min_items": 5,
            "max_items": 25,
            "se_target": 0.32,
            "exposure": {"method": "sympson-hetter", "parameters": {"item001": 0.4}},
            "content": {"grammar": 0.6, "reading": 0.4},
            "prior": {"mean": 0.0, "sd": 1.0},
        }
    )
    assert CatConfig.from_mapping(config.as_dict()) == config


def test_config_must_fit_the_bank(bank):
    """Content targets need categories the bank has; K_i must name bank items."""
    with pytest.raises(InvalidCatConfig, match="listening"):
        CatConfig(content={"listening": 1.0}).check_bank(bank)
    with pytest.raises(InvalidCatConfig, match="not in the bank"):
        CatConfig(exposure="sympson-hetter", exposure_parameters={"nope": 0.5}).check_bank(bank)
    with pytest.raises(InvalidCatConfig, match="unreachable"):
        calibrate_sympson_hetter(
            synthetic_bank(10), CatConfig(min_items=5), 0.2, np.random.default_rng(0)
        )


# --------------------------------------------------------------------------- CLI


def write_bank(path, bank: CatBank) -> None:
    items = {
        item_id: {"a": float(a), "b": float(b), "c": 0.0, "topic": topic}
        for item_id, a, b, topic in zip(bank.item_ids, bank.a, bank.b, bank.categories, strict=True)
    }
    path.write_text(json.dumps({"model": "2pl", "D": 1.0, "items": items}), encoding="utf-8")


def test_cli_simulate_reports_and_writes(runner, tmp_path, bank):
    """scoring simulate prints bias, RMSE, length and exposure and writes CSV, JSON, PNG."""
    write_bank(tmp_path / "bank.json", bank)
    (tmp_path / "cat.yaml").write_text(
        yaml.safe_dump(
            {
                "min_items": 5,
                "max_items": 30,
                "se_target": 0.3,
                "exposure": {"method": "randomesque", "k": 5},
                "content": {"grammar": 0.4, "vocabulary": 0.3, "reading": 0.3},
            }
        ),
        encoding="utf-8",
    )
    out = tmp_path / "out"
    args = ["scoring", "simulate", "--bank", str(tmp_path / "bank.json")]
    args += ["--config", str(tmp_path / "cat.yaml"), "--simulees", "300", "--seed", "5"]
    result = runner.invoke(args=[*args, "--out", str(out)])
    assert result.exit_code == 0, result.output
    lines = dict(line.split(": ", 1) for line in result.output.splitlines() if ": " in line)
    assert abs(float(lines["bias"])) < 0.1
    assert float(lines["RMSE"]) < 0.4
    assert float(lines["max exposure"].split()[0]) < 0.9
    with (out / "simulees.csv").open(encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
    assert len(rows) == 300
    assert set(rows[0]) == {"simulee", "true_theta", "theta", "se", "items", "stop"}
    summary = json.loads((out / "simulation.json").read_text(encoding="utf-8"))
    assert summary["summary"]["simulees"] == 300
    assert summary["summary"]["rmse"] == pytest.approx(float(lines["RMSE"]), abs=1e-4)
    assert len(summary["items"]) == 300
    assert summary["config"]["exposure"] == {"method": "randomesque", "k": 5}
    assert (out / "exposure_rates.png").read_bytes().startswith(b"\x89PNG")
    again = runner.invoke(args=[*args, "--out", str(tmp_path / "again")])
    assert again.exit_code == 0, again.output
    assert (tmp_path / "again" / "simulees.csv").read_bytes() == (out / "simulees.csv").read_bytes()


def test_cli_simulate_with_sympson_hetter_calibration(runner, tmp_path):
    """--r-max first finds Sympson-Hetter parameters, then simulates with them."""
    write_bank(tmp_path / "bank.json", synthetic_bank(120))
    (tmp_path / "cat.json").write_text(
        json.dumps({"min_items": 5, "max_items": 15, "se_target": None}), encoding="utf-8"
    )
    result = runner.invoke(
        args=[
            "scoring",
            "simulate",
            "--bank",
            str(tmp_path / "bank.json"),
            "--config",
            str(tmp_path / "cat.json"),
            "--simulees",
            "200",
            "--r-max",
            "0.35",
        ]
    )
    assert result.exit_code == 0, result.output
    assert "Sympson-Hetter parameters for r_max 0.35" in result.output
    lines = dict(line.split(": ", 1) for line in result.output.splitlines() if ": " in line)
    assert float(lines["max exposure"].split()[0]) < 0.5


def test_cli_simulate_refuses_bad_input(runner, tmp_path, bank):
    """A broken config or bank is refused with the reason, nothing simulated."""
    write_bank(tmp_path / "bank.json", bank)
    (tmp_path / "bad.yaml").write_text("max_items: 0\n", encoding="utf-8")
    result = runner.invoke(
        args=[
            "scoring",
            "simulate",
            "--bank",
            str(tmp_path / "bank.json"),
            "--config",
            str(tmp_path / "bad.yaml"),
        ]
    )
    assert result.exit_code != 0
    assert "max_items" in result.output
    (tmp_path / "broken.json").write_text("{", encoding="utf-8")
    result = runner.invoke(args=["scoring", "simulate", "--bank", str(tmp_path / "broken.json")])
    assert result.exit_code != 0
    assert "cannot read" in result.output
