"""Computerised adaptive testing (CAT): item selection, ability updates, simulation.

Pure numeric code (numpy): no Flask, no database, no clock, no global random state - a
seeded ``numpy.random.Generator`` is always passed in. Arrays are persons x items.
Items are dichotomous with the logistic model of ``scoring.irt`` (D = 1)::

    P_j(theta) = c_j + (1 - c_j) / (1 + exp(-a_j (theta - b_j)))
    I_j(theta) = a_j^2 s^2 (1 - c_j)(1 - s) / P_j,   s = 1 / (1 + exp(-a_j (theta - b_j)))

(Birnbaum's item information, as ``irt.item_information``.) One step of a test:

1. Ability: EAP, the posterior mean over ``quadrature_points`` Gauss-Hermite nodes of
   the prior N(prior_mean, prior_sd^2), with the posterior SD as its standard error
   (Bock & Mislevy 1982, Applied Psychological Measurement 6, 431-444). Before the
   first response the selection uses ``initial_theta``.
2. Stopping: after ``max_items`` items; or after at least ``min_items`` once the SE is
   at most ``se_target``; or when no eligible item is left.
3. Content balancing (Kingsbury & Zara 1989, Applied Measurement in Education 2,
   359-375): with target shares ``content`` per category (the item's topic), the next
   item comes from the category furthest below its target, i.e. with the largest
   shortfall ``target_c (t + 1) - n_c`` after t items of which n_c were from c (ties go
   to the category named first); only categories named in ``content`` are used.
4. Selection: maximum Fisher information at the current ability (Lord 1980,
   Applications of Item Response Theory, ch. 10), with exposure control:

   - ``randomesque`` (Kingsbury & Zara 1989): uniformly at random among the ``k`` most
     informative eligible items;
   - ``sympson-hetter`` (Sympson & Hetter 1985, Proc. 27th Annual Meeting of the
     Military Testing Association, 973-977): the most informative item is administered
     with probability K_i; if the lottery fails it is set aside for the rest of this
     person's test and the next most informative item is tried. Then P(A_i) =
     P(S_i) K_i, and ``calibrate_sympson_hetter`` finds K_i by iterated simulation so
     that no item's exposure rate P(A_i) exceeds r_max: K_i = r_max / P(S_i) where
     P(S_i) > r_max, else 1. If every eligible item fails its lottery, the most
     informative one is given.

``next_item`` and ``update_ability`` serve one person (the exam runtime); ``simulate``
runs many simulees in lockstep, all arrays at once, and reports the bias and RMSE of the
ability estimates, test lengths and the bank's exposure rates.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from scipy import special

from scoring.errors import InvalidCatConfig
from scoring.irt import THETA_BOUND, ItemParameters

SELECTION_METHODS: tuple[str, ...] = ("max_info",)
EXPOSURE_METHODS: tuple[str, ...] = ("none", "randomesque", "sympson-hetter")
CONFIG_KEYS = frozenset(
    {
        "min_items",
        "max_items",
        "se_target",
        "selection",
        "exposure",
        "content",
        "initial_theta",
        "prior",
        "quadrature_points",
    }
)
MAX_ITEMS_LIMIT = 500
CONTENT_TOLERANCE = 1e-3  # content shares must add up to 1 within this

STOP_MAX_ITEMS = "max_items"
STOP_SE = "se_target"
STOP_POOL = "pool_exhausted"


# --------------------------------------------------------------------------- bank


@dataclass(frozen=True)
class CatBank:
    """The items a CAT may draw from: ids, parameters (a, b, c) and content categories.

    ``categories`` has one entry per item (e.g. its topic), or is empty when the bank
    has none (then a configuration cannot set content targets).
    """

    item_ids: tuple[str, ...]
    a: np.ndarray
    b: np.ndarray
    c: np.ndarray
    categories: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        ids = tuple(str(i) for i in self.item_ids)
        arrays = [np.array(v, dtype=float).reshape(-1) for v in (self.a, self.b, self.c)]
        problems = []
        if not ids:
            problems.append("the bank has no items")
        if any(array.size != len(ids) for array in arrays):
            problems.append("a, b and c need one value per item id")
        elif ids:
            a, b, c = arrays
            if len(set(ids)) != len(ids):
                problems.append("item ids must be unique")
            bad = [
                ids[j]
                for j in range(len(ids))
                if not (math.isfinite(a[j]) and a[j] > 0 and math.isfinite(b[j]) and 0 <= c[j] < 1)
            ]
            if bad:
                problems.append(
                    f"item(s) {', '.join(bad[:5])}{' ...' if len(bad) > 5 else ''} need "
                    "a > 0, a finite b and 0 <= c < 1"
                )
        categories = tuple(str(category) for category in self.categories or ())
        if categories and len(categories) != len(ids):
            problems.append("categories need one entry per item (or none at all)")
        if problems:
            raise InvalidCatConfig(problems)
        for array in arrays:
            array.setflags(write=False)
        object.__setattr__(self, "item_ids", ids)
        object.__setattr__(self, "a", arrays[0])
        object.__setattr__(self, "b", arrays[1])
        object.__setattr__(self, "c", arrays[2])
        object.__setattr__(self, "categories", categories)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    @classmethod
    def from_parameters(
        cls, params: Iterable[ItemParameters], categories: Mapping[str, str] | None = None
    ) -> CatBank:
        """Build a bank from calibrated ``ItemParameters`` (categories keyed by item id)."""
        items = tuple(params)
        ids = tuple(item.item_id for item in items)
        return cls(
            ids,
            np.array([item.a for item in items], dtype=float),
            np.array([item.b for item in items], dtype=float),
            np.array([item.c for item in items], dtype=float),
            tuple(categories[i] for i in ids) if categories else (),
        )

    @classmethod
    def from_calibration(cls, data: Any) -> CatBank:
        """Build a bank from ``scoring calibrate`` JSON: ``{"model", "D", "items"}``.

        ``items`` is the calibration output's list of ``{"item_id", "a", "b", "c"}`` or a
        mapping of item id to ``{"a", "b", "c"}``; an item may add a ``category`` (or
        ``topic``) for content balancing. A scaling constant ``D`` other than 1 is folded
        into the slopes (D a), the metric the selection works in.
        """
        if not isinstance(data, Mapping):
            raise InvalidCatConfig(["a bank must be calibration JSON: a mapping with 'items'"])
        raw_items = data.get("items")
        if isinstance(raw_items, Mapping):
            entries = [{"item_id": key, **(value or {})} for key, value in raw_items.items()]
        elif isinstance(raw_items, list):
            entries = list(raw_items)
        else:
            raise InvalidCatConfig(["'items' must be a list of item parameters or a mapping"])
        scaling = data.get("D", 1.0)
        if not _is_number(scaling) or not scaling > 0:
            raise InvalidCatConfig([f"D must be a positive number, got {scaling!r}"])
        ids, a, b, c, categories, problems = [], [], [], [], [], []
        for position, entry in enumerate(entries):
            if not isinstance(entry, Mapping) or "item_id" not in entry:
                problems.append(f"items[{position}] needs an item_id")
                continue
            values = [entry.get(name, 0.0 if name == "c" else None) for name in ("a", "b", "c")]
            values[2] = 0.0 if values[2] is None else values[2]
            if not all(_is_number(v) for v in values):
                problems.append(f"item {entry['item_id']!r} needs numbers a and b (and c)")
                continue
            ids.append(str(entry["item_id"]))
            a.append(float(scaling) * float(values[0]))
            b.append(float(values[1]))
            c.append(float(values[2]))
            category = entry.get("category", entry.get("topic"))
            categories.append(None if category is None else str(category))
        if problems:
            raise InvalidCatConfig(problems)
        named = [category for category in categories if category is not None]
        if named and len(named) != len(categories):
            raise InvalidCatConfig(["either every item has a category (topic) or none has"])
        return cls(tuple(ids), np.array(a), np.array(b), np.array(c), tuple(named))


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


# --------------------------------------------------------------------------- config


@dataclass(frozen=True)
class CatConfig:
    """How an adaptive test selects, estimates and stops (see the module docstring).

    ``se_target`` None gives a fixed-length test of ``max_items``. ``exposure_parameters``
    are the Sympson-Hetter K_i by item id (an item not named has K = 1); ``content``
    maps a category to its target share of the test.
    """

    min_items: int = 1
    max_items: int = 30
    se_target: float | None = 0.3
    selection: str = "max_info"
    exposure: str = "none"
    randomesque_k: int = 1
    exposure_parameters: Mapping[str, float] = field(default_factory=dict)
    content: Mapping[str, float] = field(default_factory=dict)
    initial_theta: float = 0.0
    prior_mean: float = 0.0
    prior_sd: float = 1.0
    quadrature_points: int = 61

    def __post_init__(self) -> None:
        problems = _config_problems(self)
        if problems:
            raise InvalidCatConfig(problems)

    @classmethod
    def from_mapping(cls, raw: Any) -> CatConfig:
        """Build a configuration from YAML/JSON, listing every problem at once.

        Keys: ``min_items``, ``max_items``, ``se_target`` (null: fixed length),
        ``selection`` (max_info), ``exposure`` ({method: none | randomesque with k |
        sympson-hetter with parameters {item id: K}}), ``content`` ({category: share}),
        ``initial_theta``, ``prior`` ({mean, sd}), ``quadrature_points``.
        """
        if raw is None:
            raw = {}
        if not isinstance(raw, Mapping):
            raise InvalidCatConfig(["an adaptive configuration must be a mapping"])
        problems = [f"unknown key {key!r}" for key in sorted(set(map(str, raw)) - CONFIG_KEYS)]
        values: dict[str, Any] = {}
        for key in ("min_items", "max_items", "quadrature_points"):
            if key in raw:
                if isinstance(raw[key], bool) or not isinstance(raw[key], int):
                    problems.append(f"{key} must be a whole number")
                else:
                    values[key] = raw[key]
        for key in ("se_target", "initial_theta"):
            if key in raw and raw[key] is not None:
                if not _is_number(raw[key]):
                    problems.append(f"{key} must be a number")
                else:
                    values[key] = float(raw[key])
            elif key in raw:
                if key == "initial_theta":
                    problems.append("initial_theta must be a number")
                else:
                    values[key] = None
        if "selection" in raw:
            values["selection"] = raw["selection"]
        _parse_exposure(raw.get("exposure"), values, problems)
        _parse_content(raw.get("content"), values, problems)
        prior = raw.get("prior")
        if prior is not None:
            if not isinstance(prior, Mapping) or set(map(str, prior)) - {"mean", "sd"}:
                problems.append("prior must be a mapping with mean and sd")
            else:
                for key, name in (("mean", "prior_mean"), ("sd", "prior_sd")):
                    if key in prior:
                        if _is_number(prior[key]):
                            values[name] = float(prior[key])
                        else:
                            problems.append(f"prior.{key} must be a number")
        if problems:
            raise InvalidCatConfig(problems)
        return cls(**values)

    def as_dict(self) -> dict[str, Any]:
        """Return the configuration in the mapping form ``from_mapping`` reads."""
        exposure: dict[str, Any] = {"method": self.exposure}
        if self.exposure == "randomesque":
            exposure["k"] = self.randomesque_k
        if self.exposure == "sympson-hetter":
            exposure["parameters"] = dict(self.exposure_parameters)
        return {
            "min_items": self.min_items,
            "max_items": self.max_items,
            "se_target": self.se_target,
            "selection": self.selection,
            "exposure": exposure,
            "content": dict(self.content),
            "initial_theta": self.initial_theta,
            "prior": {"mean": self.prior_mean, "sd": self.prior_sd},
            "quadrature_points": self.quadrature_points,
        }

    def check_bank(self, bank: CatBank) -> None:
        """Raise ``InvalidCatConfig`` when this configuration cannot run on ``bank``."""
        problems = []
        if self.content:
            if not bank.categories:
                problems.append("content targets need a category (topic) for every bank item")
            else:
                missing = sorted(set(self.content) - set(bank.categories))
                if missing:
                    problems.append(f"no bank item in content category(ies) {', '.join(missing)}")
        unknown = sorted(set(self.exposure_parameters) - set(bank.item_ids))
        if unknown:
            problems.append(
                f"exposure parameters for item(s) not in the bank: {', '.join(unknown[:5])}"
            )
        if problems:
            raise InvalidCatConfig(problems)


def _parse_exposure(raw: Any, values: dict[str, Any], problems: list[str]) -> None:
    if raw is None:
        return
    if isinstance(raw, str):
        raw = {"method": raw}
    if not isinstance(raw, Mapping):
        problems.append("exposure must be a mapping with a method")
        return
    method = raw.get("method", "none")
    extra = set(map(str, raw)) - {"method", "k", "parameters"}
    if extra:
        problems.append(f"exposure: unknown key(s) {', '.join(sorted(extra))}")
    values["exposure"] = method
    if "k" in raw:
        if method != "randomesque":
            problems.append("exposure.k belongs to the randomesque method")
        elif isinstance(raw["k"], bool) or not isinstance(raw["k"], int):
            problems.append("exposure.k must be a whole number")
        else:
            values["randomesque_k"] = raw["k"]
    elif method == "randomesque":
        values["randomesque_k"] = 5
    if "parameters" in raw:
        parameters = raw["parameters"]
        if method != "sympson-hetter":
            problems.append("exposure.parameters belong to the sympson-hetter method")
        elif not isinstance(parameters, Mapping) or not all(
            _is_number(v) for v in parameters.values()
        ):
            problems.append("exposure.parameters must map item ids to numbers K (0 < K <= 1)")
        else:
            values["exposure_parameters"] = {str(k): float(v) for k, v in parameters.items()}


def _parse_content(raw: Any, values: dict[str, Any], problems: list[str]) -> None:
    if raw is None:
        return
    if not isinstance(raw, Mapping) or not all(_is_number(v) for v in raw.values()):
        problems.append("content must map categories to target shares (numbers)")
        return
    values["content"] = {str(k): float(v) for k, v in raw.items()}


def _config_problems(config: CatConfig) -> list[str]:
    problems = []
    if not (isinstance(config.max_items, int) and 1 <= config.max_items <= MAX_ITEMS_LIMIT):
        problems.append(f"max_items must be a whole number from 1 to {MAX_ITEMS_LIMIT}")
    elif not (isinstance(config.min_items, int) and 1 <= config.min_items <= config.max_items):
        problems.append("min_items must be a whole number from 1 to max_items")
    if config.se_target is not None and not (0 < config.se_target < 10):
        problems.append("se_target must be above 0 (and below 10), or null for a fixed length")
    if config.selection not in SELECTION_METHODS:
        problems.append(f"selection must be one of {list(SELECTION_METHODS)}")
    if config.exposure not in EXPOSURE_METHODS:
        problems.append(f"exposure.method must be one of {list(EXPOSURE_METHODS)}")
    if not (isinstance(config.randomesque_k, int) and 1 <= config.randomesque_k <= 100):
        problems.append("exposure.k must be a whole number from 1 to 100")
    bad = [k for k, v in config.exposure_parameters.items() if not (0 < v <= 1)]
    if bad:
        problems.append(f"Sympson-Hetter parameters must be in (0, 1]: {', '.join(bad[:5])}")
    if config.content:
        if any(not (0 < share <= 1) for share in config.content.values()):
            problems.append("content shares must be above 0 and at most 1")
        elif abs(sum(config.content.values()) - 1) > CONTENT_TOLERANCE:
            problems.append(
                f"content shares must add up to 1, got {sum(config.content.values()):g}"
            )
    if not (math.isfinite(config.initial_theta) and abs(config.initial_theta) <= THETA_BOUND):
        problems.append(f"initial_theta must be from -{THETA_BOUND:g} to {THETA_BOUND:g}")
    if not (math.isfinite(config.prior_mean) and abs(config.prior_mean) <= THETA_BOUND):
        problems.append(f"prior.mean must be from -{THETA_BOUND:g} to {THETA_BOUND:g}")
    if not (math.isfinite(config.prior_sd) and 0 < config.prior_sd <= 10):
        problems.append("prior.sd must be above 0 and at most 10")
    if not (isinstance(config.quadrature_points, int) and 5 <= config.quadrature_points <= 201):
        problems.append("quadrature_points must be a whole number from 5 to 201")
    return problems


# --------------------------------------------------------------------------- numerics


def information(theta: np.ndarray | float, bank: CatBank) -> np.ndarray:
    """Return Birnbaum's item information, thetas x items (``irt.item_information``)."""
    theta = np.atleast_1d(np.asarray(theta, dtype=float))
    s = special.expit(bank.a * (theta[:, None] - bank.b))
    p = bank.c + (1 - bank.c) * s
    return bank.a**2 * s**2 * (1 - bank.c) * (1 - s) / p


def _probability(theta: np.ndarray, bank: CatBank, items: np.ndarray) -> np.ndarray:
    """P(right) of person i on item items[i]."""
    a, b, c = bank.a[items], bank.b[items], bank.c[items]
    return c + (1 - c) * special.expit(a * (theta - b))


@dataclass(frozen=True)
class _Grid:
    """Quadrature nodes of the prior and the log P / log(1 - P) of every item there."""

    nodes: np.ndarray  # (Q,)
    log_prior: np.ndarray  # (Q,)
    log_p: np.ndarray  # (J, Q)
    log_q: np.ndarray  # (J, Q)


def _grid(config: CatConfig, bank: CatBank) -> _Grid:
    standard, weights = np.polynomial.hermite_e.hermegauss(config.quadrature_points)
    nodes = config.prior_mean + config.prior_sd * standard
    z = bank.a[:, None] * (nodes[None, :] - bank.b[:, None])
    c = bank.c[:, None]
    log_c = np.full(c.shape, -np.inf)
    np.log(c, out=log_c, where=c > 0)
    log_p = np.logaddexp(log_c, np.log1p(-c) - np.logaddexp(0.0, -z))
    log_q = np.log1p(-c) - np.logaddexp(0.0, z)
    return _Grid(nodes, np.log(weights / weights.sum()), log_p, log_q)


def _eap(log_posterior: np.ndarray, nodes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Posterior mean and SD for each row of an (n, Q) unnormalised log posterior."""
    weights = np.exp(log_posterior - log_posterior.max(axis=1, keepdims=True))
    weights /= weights.sum(axis=1, keepdims=True)
    mean = weights @ nodes
    variance = weights @ nodes**2 - mean**2
    return mean, np.sqrt(np.maximum(variance, 0.0))


@dataclass(frozen=True)
class _Step:
    """One selection for each of n persons."""

    chosen: np.ndarray  # (n,) item index, -1 when no item is eligible
    rejected: np.ndarray  # (n, J) items whose Sympson-Hetter lottery failed
    considered: np.ndarray  # (n, J) items selected for a lottery (or given without one)


def _category_index(config: CatConfig, bank: CatBank) -> np.ndarray:
    """Each item's position in ``config.content`` (-1 for a category not named there)."""
    order = {category: k for k, category in enumerate(config.content)}
    return np.array([order.get(category, -1) for category in bank.categories], dtype=int)


def _select(
    config: CatConfig,
    bank: CatBank,
    theta: np.ndarray,
    available: np.ndarray,
    category_counts: np.ndarray,
    given: np.ndarray,
    lottery_k: np.ndarray,
    rng: np.random.Generator,
    lottery: np.ndarray | None = None,
) -> _Step:
    """Choose the next item for n persons at once (content, information, exposure).

    ``lottery`` (n, J) holds the Sympson-Hetter uniform draws; by default they are
    drawn from ``rng``.
    """
    n, j = available.shape
    eligible = available.copy()
    if config.content:
        category = _category_index(config, bank)
        eligible &= category >= 0
        onehot = category[:, None] == np.arange(len(config.content))[None, :]  # (J, C)
        has_items = (eligible.astype(float) @ onehot) > 0  # (n, C)
        targets = np.array(list(config.content.values()))
        shortfall = targets[None, :] * (given[:, None] + 1) - category_counts
        shortfall = np.where(has_items, shortfall, -np.inf)
        wanted = np.argmax(shortfall, axis=1)
        eligible &= category[None, :] == wanted[:, None]
    info = np.where(eligible, information(theta, bank), -np.inf)
    any_eligible = eligible.any(axis=1)
    rows = np.arange(n)
    rejected = np.zeros((n, j), dtype=bool)
    considered = np.zeros((n, j), dtype=bool)
    if config.exposure == "none":
        chosen = np.argmax(info, axis=1)
    elif config.exposure == "randomesque":
        order = np.argsort(-info, axis=1, kind="stable")
        top = np.minimum(config.randomesque_k, eligible.sum(axis=1))
        pick = np.floor(rng.random(n) * np.maximum(top, 1)).astype(int)
        chosen = order[rows, pick]
    else:  # sympson-hetter
        draws = rng.random((n, j)) if lottery is None else lottery  # per item, bank order
        order = np.argsort(-info, axis=1, kind="stable")
        ranked_eligible = eligible[rows[:, None], order]
        passes = ranked_eligible & (draws[rows[:, None], order] < lottery_k[order])
        has_pass = passes.any(axis=1)
        first = np.where(has_pass, np.argmax(passes, axis=1), 0)
        chosen = order[rows, first]
        ranks = np.arange(j)[None, :]
        tried = ranked_eligible & (ranks <= np.where(has_pass, first, j)[:, None])
        failed = tried & (ranks < first[:, None]) & has_pass[:, None]
        failed |= tried & ~has_pass[:, None]
        considered[rows[:, None], order] = tried
        rejected[rows[:, None], order] = failed & ~(ranks == first[:, None])
    chosen = np.where(any_eligible, chosen, -1)
    if config.exposure != "sympson-hetter":
        considered[rows[any_eligible], chosen[any_eligible]] = True
    return _Step(chosen, rejected, considered)


def _lottery_k(config: CatConfig, bank: CatBank) -> np.ndarray:
    return np.array([config.exposure_parameters.get(i, 1.0) for i in bank.item_ids])


def _stop_reason(config: CatConfig, given: int, se: float) -> str | None:
    if given >= config.max_items:
        return STOP_MAX_ITEMS
    if config.se_target is not None and given >= config.min_items and se <= config.se_target:
        return STOP_SE
    return None


# --------------------------------------------------------------------------- one person


@dataclass(frozen=True)
class Ability:
    """A person's EAP ability and its standard error (posterior SD) after some items."""

    theta: float
    se: float


def _indices(bank: CatBank, administered: Sequence[int | str]) -> np.ndarray:
    position = {item_id: j for j, item_id in enumerate(bank.item_ids)}
    indices = []
    for item in administered:
        if isinstance(item, str):
            if item not in position:
                raise InvalidCatConfig([f"item {item!r} is not in the bank"])
            indices.append(position[item])
        elif isinstance(item, int | np.integer) and 0 <= item < bank.n_items:
            indices.append(int(item))
        else:
            raise InvalidCatConfig([f"item index {item!r} is outside the bank"])
    return np.array(indices, dtype=int)


def update_ability(
    config: CatConfig,
    bank: CatBank,
    administered: Sequence[int | str],
    responses: Sequence[int | bool | float],
) -> Ability:
    """Return the EAP ability and posterior SD after ``responses`` (1 right, 0 wrong).

    ``administered`` are bank indices or item ids, in the order given. With no
    responses the prior's mean and SD come back.
    """
    items = _indices(bank, administered)
    right = np.asarray(responses, dtype=float).reshape(-1)
    if right.size != items.size or not np.all((right == 0) | (right == 1)):
        raise InvalidCatConfig(["give one response, 1 or 0, per administered item"])
    grid = _grid(config, bank)
    log_posterior = grid.log_prior + np.where(
        right[:, None] == 1, grid.log_p[items], grid.log_q[items]
    ).sum(axis=0)
    theta, se = _eap(log_posterior[None, :], grid.nodes)
    return Ability(float(theta[0]), float(se[0]))


def next_item(
    config: CatConfig,
    bank: CatBank,
    administered: Sequence[int | str],
    responses: Sequence[int | bool | float],
    rng: np.random.Generator,
    *,
    excluded: Iterable[int | str] = (),
    lottery: Sequence[float] | None = None,
) -> int | None:
    """Return the bank index of the next item, or None when a stopping rule is met.

    ``excluded`` items are never chosen (shown elsewhere in the same exam, or set aside
    by an earlier Sympson-Hetter lottery). The selection ability is ``initial_theta``
    before the first response and the EAP after it. ``lottery`` gives one uniform draw
    per bank item for Sympson-Hetter (default: fresh draws from ``rng``); a caller that
    keeps each item's draw fixed for the whole test sets aside, as the method requires,
    every item whose lottery once failed.
    """
    items = _indices(bank, administered)
    if items.size != len(responses):
        raise InvalidCatConfig(["give one response per administered item"])
    if items.size:
        ability = update_ability(config, bank, items.tolist(), responses)
        theta, se = ability.theta, ability.se
    else:
        theta, se = config.initial_theta, config.prior_sd
    if _stop_reason(config, int(items.size), se) is not None:
        return None
    available = np.ones((1, bank.n_items), dtype=bool)
    available[0, items] = False
    available[0, _indices(bank, list(excluded))] = False
    counts = np.zeros((1, len(config.content)))
    if config.content:
        category = _category_index(config, bank)[items]
        counts[0] = np.bincount(category[category >= 0], minlength=len(config.content))
    step = _select(
        config,
        bank,
        np.array([theta]),
        available,
        counts,
        np.array([items.size]),
        _lottery_k(config, bank),
        rng,
        None if lottery is None else np.asarray(lottery, dtype=float).reshape(1, bank.n_items),
    )
    chosen = int(step.chosen[0])
    return None if chosen < 0 else chosen


# --------------------------------------------------------------------------- simulation


@dataclass(frozen=True)
class SimulationResult:
    """Per simulee: true and estimated ability, SE, test length, why it stopped and
    the items given; per item: exposure rate (share of simulees given it) and selection
    rate (share for whom it came up for a Sympson-Hetter lottery, or was given without
    one)."""

    item_ids: tuple[str, ...]
    true_theta: np.ndarray
    theta: np.ndarray
    se: np.ndarray
    length: np.ndarray
    stop_reason: tuple[str, ...]
    exposure_rate: np.ndarray
    selection_rate: np.ndarray
    administered: np.ndarray  # (n, max_items) bank indices in order given, -1 after the end

    @property
    def bias(self) -> float:
        return float(np.mean(self.theta - self.true_theta))

    @property
    def rmse(self) -> float:
        return float(np.sqrt(np.mean((self.theta - self.true_theta) ** 2)))

    @property
    def mean_length(self) -> float:
        return float(np.mean(self.length))

    @property
    def mean_se(self) -> float:
        return float(np.mean(self.se))

    @property
    def max_exposure(self) -> float:
        return float(np.max(self.exposure_rate))

    @property
    def unused_share(self) -> float:
        """Share of the bank's items no simulee was given."""
        return float(np.mean(self.exposure_rate == 0))

    def summary(self) -> dict[str, Any]:
        reasons = {
            reason: self.stop_reason.count(reason) for reason in sorted(set(self.stop_reason))
        }
        return {
            "simulees": int(self.true_theta.size),
            "bank_items": len(self.item_ids),
            "bias": self.bias,
            "rmse": self.rmse,
            "correlation": float(np.corrcoef(self.theta, self.true_theta)[0, 1])
            if self.true_theta.size > 1 and np.std(self.true_theta) > 0
            else None,
            "mean_se": self.mean_se,
            "mean_length": self.mean_length,
            "min_length": int(np.min(self.length)),
            "max_length": int(np.max(self.length)),
            "max_exposure": self.max_exposure,
            "unused_items": self.unused_share,
            "stop_reasons": reasons,
        }

    def simulee_rows(self) -> list[list[Any]]:
        """A header and one row per simulee (for CSV)."""
        rows: list[list[Any]] = [["simulee", "true_theta", "theta", "se", "items", "stop"]]
        for i in range(self.true_theta.size):
            rows.append(
                [
                    i + 1,
                    f"{self.true_theta[i]:.4f}",
                    f"{self.theta[i]:.4f}",
                    f"{self.se[i]:.4f}",
                    int(self.length[i]),
                    self.stop_reason[i],
                ]
            )
        return rows


def simulate(
    bank: CatBank,
    config: CatConfig,
    true_thetas: Sequence[float] | np.ndarray,
    rng: np.random.Generator,
    *,
    progress: Callable[[int], None] | None = None,
) -> SimulationResult:
    """Give every simulee an adaptive test, all in lockstep, and collect the results.

    Responses are drawn from the model at each simulee's true theta with ``rng``, which
    also drives the exposure control, so a seeded generator makes the run reproducible.
    ``progress`` is called with the number of simulees that finished at each step.
    """
    config.check_bank(bank)
    truth = np.asarray(true_thetas, dtype=float).reshape(-1)
    if truth.size == 0 or not np.all(np.isfinite(truth)):
        raise InvalidCatConfig(["true thetas must be a non-empty list of finite numbers"])
    n, j = truth.size, bank.n_items
    grid = _grid(config, bank)
    lottery_k = _lottery_k(config, bank)
    category = _category_index(config, bank) if config.content else None
    log_posterior = np.tile(grid.log_prior, (n, 1))
    theta = np.full(n, config.initial_theta)
    se = np.full(n, config.prior_sd)
    available = np.ones((n, j), dtype=bool)
    counts = np.zeros((n, len(config.content)))
    given = np.zeros(n, dtype=int)
    active = np.ones(n, dtype=bool)
    reasons = [""] * n
    administered = np.full((n, config.max_items), -1, dtype=int)
    exposures = np.zeros(j)
    selections = np.zeros(j)
    while active.any():
        rows = np.flatnonzero(active)
        step = _select(
            config,
            bank,
            theta[rows],
            available[rows],
            counts[rows],
            given[rows],
            lottery_k,
            rng,
        )
        selections += step.considered.sum(axis=0)
        available[rows] &= ~step.rejected
        exhausted = rows[step.chosen < 0]
        for i in exhausted:
            reasons[i] = STOP_POOL
        served = step.chosen >= 0
        rows, items = rows[served], step.chosen[served]
        right = rng.random(rows.size) < _probability(truth[rows], bank, items)
        log_posterior[rows] += np.where(right[:, None], grid.log_p[items], grid.log_q[items])
        available[rows, items] = False
        administered[rows, given[rows]] = items
        if category is not None:
            counts[rows, category[items]] += 1
        given[rows] += 1
        np.add.at(exposures, items, 1)
        theta[rows], se[rows] = _eap(log_posterior[rows], grid.nodes)
        active[exhausted] = False
        finished = len(exhausted)
        for i in rows:
            reason = _stop_reason(config, int(given[i]), float(se[i]))
            if reason is not None:
                reasons[i] = reason
                active[i] = False
                finished += 1
        if progress is not None and finished:
            progress(finished)
    return SimulationResult(
        item_ids=bank.item_ids,
        true_theta=truth,
        theta=theta,
        se=se,
        length=given,
        stop_reason=tuple(reasons),
        exposure_rate=exposures / n,
        selection_rate=selections / n,
        administered=administered,
    )


@dataclass(frozen=True)
class SympsonHetterCalibration:
    """Exposure parameters K_i by item id and the max exposure rate after each round."""

    parameters: dict[str, float]
    max_exposure: tuple[float, ...]
    converged: bool


def calibrate_sympson_hetter(
    bank: CatBank,
    config: CatConfig,
    r_max: float,
    rng: np.random.Generator,
    *,
    simulees: int = 2000,
    rounds: int = 12,
    tolerance: float = 0.01,
) -> SympsonHetterCalibration:
    """Find Sympson-Hetter K_i so that no exposure rate exceeds ``r_max`` (+ tolerance).

    Each round simulates ``simulees`` N(0, 1) examinees with the current K, then sets
    K_i = r_max / P(S_i) for items selected more often than r_max and 1 for the others
    (Sympson & Hetter 1985). Returns the K of the first round whose max exposure was
    within tolerance (``converged``), else the K computed from the last round.
    """
    if not (0 < r_max <= 1):
        raise InvalidCatConfig(["r_max must be above 0 and at most 1"])
    if r_max * bank.n_items < config.min_items:
        raise InvalidCatConfig(
            [
                f"r_max {r_max:g} is unreachable: {bank.n_items} items cannot fill "
                f"{config.min_items} places per test with no item above that rate"
            ]
        )
    parameters = {item_id: 1.0 for item_id in bank.item_ids}
    history: list[float] = []
    for _ in range(rounds):
        trial = replace(config, exposure="sympson-hetter", exposure_parameters=dict(parameters))
        result = simulate(bank, trial, rng.standard_normal(simulees), rng)
        history.append(result.max_exposure)
        if result.max_exposure <= r_max + tolerance:
            return SympsonHetterCalibration(parameters, tuple(history), True)
        selected = result.selection_rate
        parameters = {
            item_id: float(min(1.0, r_max / selected[k])) if selected[k] > r_max else 1.0
            for k, item_id in enumerate(bank.item_ids)
        }
    return SympsonHetterCalibration(parameters, tuple(history), False)
