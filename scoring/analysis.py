"""Classical item analysis: item statistics, reliability and review flags.

Pure numpy on a persons x items score matrix: no Flask, no database, no clock.

Input conventions
-----------------
``scores[i, j]`` is person ``i``'s score on item ``j`` as a proportion of the item's
maximum: 1/0 for dichotomous items, partial credit anywhere in [0, 1]. ``NaN`` means
*not presented* (missing by design: item pools, sections skipped by routing); an item
presented but left unanswered must be scored 0 by the caller, not NaN.
``weights[i]`` are frequency weights (a weight of 2 is the same as the row twice); a
person with weight 0 is ignored. Persons with no presented item are ignored.

Missing data (what is done with NaN)
------------------------------------
- Total score: prorated over presented items, ``T_i = k * mean_{j presented} x_ij``
  (k = number of items). Without missing data this is the plain sum of item scores.
- Rest score for item j: ``R_ij = (k - 1) * mean_{l != j presented} x_il``; persons who
  saw only item j have no rest score and are left out of that item's item-rest r.
- Item statistics use the persons presented that item (pairwise-complete data): p is the
  mean among them, correlations pair the item with T (or R) over them, the upper and
  lower groups are formed among them.
- Cronbach's alpha uses the pairwise-complete covariance matrix: each item variance over
  the persons presented the item, each covariance over the persons presented both
  (with that pair's own means, like R's ``cov(use="pairwise.complete.obs")`` and
  ``psych::alpha``'s default). Without missing data this is exactly the usual alpha.
  A pair of items never presented together makes alpha undefined (None).
- KR-20 uses complete rows only (persons presented every item) and is only computed
  when every score is 0 or 1.

Variances are population variances (divide by the sum of weights). KR-20's ``p q`` is a
population variance, so with this convention KR-20 equals alpha exactly on complete
0/1 data; alpha itself does not depend on the divisor.

Formulas and sources
--------------------
- Facility ``p_j``: weighted mean item score among persons presented item j.
- Point-biserial ``r_jT``: Pearson correlation of item score with total score
  (for 0/1 items equal to ``(M_1 - M_0) / s_T * sqrt(p q)``); Lord & Novick (1968),
  *Statistical Theories of Mental Test Scores*, ch. 15.
- Corrected item-total (item-rest) ``r_jR``: Pearson correlation with the total without
  the item; Henrysson (1963), Psychometrika 28, 211-218.
- Discrimination index ``D = p_upper - p_lower`` with upper and lower groups the top and
  bottom 27% by total score; Kelley (1939), J. Educ. Psych. 30, 17-24; Ebel & Frisbie
  (1991), *Essentials of Educational Measurement* (D < .20 poor). Persons tied at a
  group boundary enter the group with the same fractional weight, so groups hold exactly
  27% of the weight and ties are treated alike.
- Cronbach's alpha ``= k/(k-1) * (1 - sum_j s_j^2 / s_T^2)`` with ``s_T^2 = sum_jl C_jl``;
  Cronbach (1951), Psychometrika 16, 297-334. Alpha if item deleted: the same on C
  without row and column j.
- KR-20 ``= k/(k-1) * (1 - sum_j p_j q_j / s_T^2)``; Kuder & Richardson (1937),
  Psychometrika 2, 151-160.
- SEM ``= s_T * sqrt(1 - alpha)``; Crocker & Algina (1986), *Introduction to Classical
  and Modern Test Theory*, ch. 7.
- Distractors: share choosing each option overall, in the upper and lower groups, and the
  option's point-biserial (choice indicator with total). A working distractor draws more
  from the lower group and correlates negatively; Haladyna & Downing (1993), Educ.
  Psych. Meas. 53, 999-1010.

Flag thresholds (``FlagThresholds``) follow common practice: p > .90 too easy, p < .20 too
hard, item-rest r < .20 low discrimination, item-rest r < 0 negative discrimination (a
negative item is also low), alpha if deleted above alpha. A constant item (everyone the
same score) has no correlations and is flagged ``no_discrimination_data``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from scoring.errors import ScoringError

# A variance at or below this counts as zero: scores live in [0, 1], so rounding noise in
# a truly constant column is many orders of magnitude smaller.
_ZERO_VARIANCE = 1e-12
_DEFAULT_GROUP_FRACTION = 0.27


class InvalidAnalysisInput(ScoringError, ValueError):
    """The score matrix, weights or option data cannot be analysed."""

    code = "invalid_analysis_input"


@dataclass(frozen=True)
class ChoiceData:
    """Chosen options for distractor analysis.

    ``choices[i][j]``: the option label person i chose on item j, None if omitted or not
    presented. ``options[j]``: the labels offered on item j (None for items without
    options). ``keys[j]``: the correct label of item j (None for items without options).
    """

    choices: Sequence[Sequence[str | None]] | np.ndarray
    options: Sequence[Sequence[str] | None]
    keys: Sequence[str | None]


@dataclass(frozen=True)
class FlagThresholds:
    """Where an item statistic becomes a review flag."""

    too_easy: float = 0.9
    too_hard: float = 0.2
    low_discrimination: float = 0.2


@dataclass(frozen=True)
class Flag:
    """A reason to review an item: a stable ``code`` and a readable message."""

    code: str
    message: str


@dataclass(frozen=True)
class OptionStats:
    """How one option of a choice item was chosen."""

    option: str
    is_key: bool
    chosen: float
    proportion: float | None
    upper_proportion: float | None
    lower_proportion: float | None
    point_biserial: float | None


@dataclass(frozen=True)
class ItemStats:
    """Classical statistics of one item; None where a statistic is undefined."""

    index: int
    item_id: str
    n_presented: float
    facility: float | None
    point_biserial: float | None
    item_rest: float | None
    upper_facility: float | None
    lower_facility: float | None
    discrimination_index: float | None
    alpha_if_deleted: float | None
    omitted: float | None = None
    options: tuple[OptionStats, ...] = ()
    flags: tuple[Flag, ...] = ()


@dataclass(frozen=True)
class TestStats:
    """Test-level statistics of the total score."""

    __test__ = False  # not a pytest test class despite the name

    n_persons: float
    n_items: int
    n_complete: float
    mean: float | None
    sd: float | None
    alpha: float | None
    kr20: float | None
    sem: float | None


ITEM_CSV_HEADER = (
    "item",
    "n_presented",
    "p",
    "point_biserial",
    "item_rest_r",
    "upper_p",
    "lower_p",
    "D",
    "alpha_if_deleted",
    "flags",
)


@dataclass(frozen=True)
class ItemAnalysis:
    """The result of ``analyze_items``."""

    test: TestStats
    items: tuple[ItemStats, ...] = field(default_factory=tuple)

    def as_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict (undefined statistics are None)."""
        return asdict(self)

    def summary(self) -> dict[str, Any]:
        """Return the test-level figures people ask for first (``analyze``'s summary.json)."""
        test = self.test
        return {
            "n": test.n_persons,
            "items": test.n_items,
            "alpha": test.alpha,
            "KR20": test.kr20,
            "SEM": test.sem,
            "mean": test.mean,
            "SD": test.sd,
            "flagged_items": sum(1 for item in self.items if item.flags),
        }

    def to_csv_rows(self, digits: int = 4) -> list[list[str]]:
        """Return one header row and one row per item, values rounded to ``digits``."""
        rows = [list(ITEM_CSV_HEADER)]
        for item in self.items:
            values = (
                item.n_presented,
                item.facility,
                item.point_biserial,
                item.item_rest,
                item.upper_facility,
                item.lower_facility,
                item.discrimination_index,
                item.alpha_if_deleted,
            )
            rows.append(
                [item.item_id]
                + [_format(value, digits) for value in values]
                + ["; ".join(flag.message for flag in item.flags)]
            )
        return rows

    def option_csv_rows(self, digits: int = 4) -> list[list[str]]:
        """Return a header row and one row per item option (distractor table)."""
        rows = [["item", "option", "key", "chosen", "proportion", "upper", "lower", "pbis"]]
        for item in self.items:
            for option in item.options:
                values = (
                    option.chosen,
                    option.proportion,
                    option.upper_proportion,
                    option.lower_proportion,
                    option.point_biserial,
                )
                rows.append(
                    [item.item_id, option.option, "*" if option.is_key else ""]
                    + [_format(value, digits) for value in values]
                )
        return rows


# --- public functions --------------------------------------------------------------


def analyze_items(
    scores: Any,
    *,
    weights: Any = None,
    item_ids: Sequence[str] | None = None,
    choices: ChoiceData | None = None,
    group_fraction: float = _DEFAULT_GROUP_FRACTION,
    thresholds: FlagThresholds | None = None,
) -> ItemAnalysis:
    """Analyse a persons x items score matrix (NaN = not presented).

    See the module docstring for the formulas and the treatment of missing data.
    """
    x, w, keep = _prepare(scores, weights)
    n_items = x.shape[1]
    if item_ids is None:
        item_ids = [str(j + 1) for j in range(n_items)]
    if len(item_ids) != n_items:
        raise InvalidAnalysisInput("item_ids must name every item")
    if not 0 < group_fraction <= 0.5:
        raise InvalidAnalysisInput("group_fraction must lie in (0, 0.5]")
    thresholds = thresholds or FlagThresholds()
    labels = None
    if choices is not None:
        labels = _prepare_choices(choices, n_items, keep)

    presented = ~np.isnan(x)
    totals = prorated_totals(x)
    covariance = _pairwise_covariance(x, w)
    alpha = _alpha_from_covariance(covariance)
    test = _test_stats(x, w, totals, alpha)

    items = []
    for j in range(n_items):
        mask = presented[:, j]
        stats = _item_stats(j, str(item_ids[j]), x, w, totals, mask, group_fraction)
        alpha_deleted = _alpha_from_covariance(np.delete(np.delete(covariance, j, 0), j, 1))
        options: tuple[OptionStats, ...] = ()
        omitted = None
        if labels is not None and choices is not None and choices.options[j] is not None:
            options, omitted = _option_stats(
                labels[mask, j],
                w[mask],
                totals[mask],
                tuple(choices.options[j] or ()),
                choices.keys[j],
                group_fraction,
            )
        stats = {**stats, "alpha_if_deleted": alpha_deleted, "omitted": omitted}
        flags = _flags(stats, options, alpha, thresholds)
        items.append(ItemStats(**stats, options=options, flags=flags))
    return ItemAnalysis(test=test, items=tuple(items))


def prorated_totals(scores: Any) -> np.ndarray:
    """Return each person's total over presented items, prorated to all k items.

    ``T_i = k * mean_{j presented} x_ij``; NaN for a person who saw no item.
    """
    x = np.asarray(scores, dtype=float)
    counts = (~np.isnan(x)).sum(axis=1)
    sums = np.nansum(x, axis=1)
    out = np.full(x.shape[0], np.nan)
    np.divide(sums * x.shape[1], counts, out=out, where=counts > 0)
    return out


def cronbach_alpha(scores: Any, weights: Any = None) -> float | None:
    """Return Cronbach's alpha (pairwise-complete covariances), None if undefined."""
    x, w, _ = _prepare(scores, weights)
    return _alpha_from_covariance(_pairwise_covariance(x, w))


def kr20(scores: Any, weights: Any = None) -> float | None:
    """Return KR-20 over complete rows of a 0/1 matrix; None if undefined or not 0/1."""
    x, w, _ = _prepare(scores, weights)
    complete = ~np.isnan(x).any(axis=1)
    x, w = x[complete], w[complete]
    k = x.shape[1]
    if k < 2 or w.sum() <= 0 or not np.isin(x, (0.0, 1.0)).all():
        return None
    p = w @ x / w.sum()
    total_variance = _weighted_variance(x.sum(axis=1), w)
    if total_variance <= _ZERO_VARIANCE:
        return None
    return _clean(k / (k - 1) * (1 - float(np.sum(p * (1 - p))) / total_variance))


def standard_error_of_measurement(sd: float | None, reliability: float | None) -> float | None:
    """Return ``SEM = SD * sqrt(1 - reliability)``; None if either is undefined."""
    if sd is None or reliability is None or reliability > 1:
        return None
    return sd * math.sqrt(1 - reliability)


# --- preparation -------------------------------------------------------------------


def _prepare(scores: Any, weights: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validate; drop persons with zero weight or no presented item (``keep`` marks kept)."""
    x = np.array(scores, dtype=float)
    if x.ndim != 2 or x.shape[1] == 0:
        raise InvalidAnalysisInput("scores must be a persons x items matrix")
    if np.isinf(x).any():
        raise InvalidAnalysisInput("scores must be finite or NaN")
    finite = x[~np.isnan(x)]
    if ((finite < 0) | (finite > 1)).any():
        raise InvalidAnalysisInput("scores must lie in [0, 1]")
    w = np.ones(x.shape[0]) if weights is None else np.array(weights, dtype=float)
    if w.shape != (x.shape[0],):
        raise InvalidAnalysisInput("weights need one value per person")
    if not np.isfinite(w).all() or (w < 0).any():
        raise InvalidAnalysisInput("weights must be finite and non-negative")
    keep = (w > 0) & (~np.isnan(x)).any(axis=1)
    return x[keep], w[keep], keep


def _prepare_choices(choices: ChoiceData, n_items: int, keep: np.ndarray) -> np.ndarray:
    """Return the chosen labels for the kept persons, validated against the options."""
    labels = np.array(choices.choices, dtype=object)
    if labels.shape != (len(keep), n_items):
        raise InvalidAnalysisInput("choices must be a persons x items matrix like scores")
    if len(choices.options) != n_items or len(choices.keys) != n_items:
        raise InvalidAnalysisInput("options and keys need one entry per item")
    for j in range(n_items):
        offered = choices.options[j]
        if offered is None:
            continue
        if choices.keys[j] not in offered:
            raise InvalidAnalysisInput(f"the key of item {j + 1} is not among its options")
        unknown = {label for label in labels[:, j] if label is not None} - set(offered)
        if unknown:
            raise InvalidAnalysisInput(f"item {j + 1} has choices outside its options")
    return labels[keep]


# --- statistics --------------------------------------------------------------------


def _weighted_mean(values: np.ndarray, w: np.ndarray) -> float:
    return float(w @ values / w.sum())


def _weighted_variance(values: np.ndarray, w: np.ndarray) -> float:
    centred = values - _weighted_mean(values, w)
    return float(w @ (centred * centred) / w.sum())


def _correlation(a: np.ndarray, b: np.ndarray, w: np.ndarray) -> float | None:
    """Weighted Pearson r; None with fewer than two persons or a constant variable."""
    if len(a) < 2 or w.sum() <= 0 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return None
    va, vb = _weighted_variance(a, w), _weighted_variance(b, w)
    if va <= _ZERO_VARIANCE or vb <= _ZERO_VARIANCE:
        return None
    da, db = a - _weighted_mean(a, w), b - _weighted_mean(b, w)
    return _clean(float(w @ (da * db) / w.sum()) / math.sqrt(va * vb))


def _pairwise_covariance(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Return the k x k covariance matrix, each entry over the persons presented both.

    Entries for pairs never presented together are NaN.
    """
    presented = ~np.isnan(x)
    values = np.where(presented, x, 0.0)
    k = x.shape[1]
    cov = np.full((k, k), np.nan)
    for j in range(k):
        both = presented[:, [j]] & presented  # persons x items: presented j and l
        mass = w @ both
        has = mass > 0
        if not has.any():
            continue
        wb = w[:, None] * both
        mean_j = np.divide(wb.T @ values[:, j], mass, out=np.zeros(k), where=has)
        mean_l = np.divide((wb * values).sum(axis=0), mass, out=np.zeros(k), where=has)
        dj = (values[:, [j]] - mean_j) * both
        dl = (values - mean_l) * both
        cov[j, has] = (w @ (dj * dl))[has] / mass[has]
    return cov


def _alpha_from_covariance(cov: np.ndarray) -> float | None:
    """Return ``k/(k-1) * (1 - trace(C) / sum(C))``; None if undefined."""
    k = cov.shape[0]
    if k < 2 or np.isnan(cov).any():
        return None
    total_variance = float(cov.sum())
    if total_variance <= _ZERO_VARIANCE:
        return None
    return _clean(k / (k - 1) * (1 - float(np.trace(cov)) / total_variance))


def _test_stats(x: np.ndarray, w: np.ndarray, totals: np.ndarray, alpha: float | None) -> TestStats:
    complete = ~np.isnan(x).any(axis=1)
    n = float(w.sum())
    mean = _weighted_mean(totals, w) if n > 0 else None
    sd = math.sqrt(_weighted_variance(totals, w)) if n > 0 else None
    return TestStats(
        n_persons=n,
        n_items=x.shape[1],
        n_complete=float(w[complete].sum()),
        mean=_clean(mean),
        sd=_clean(sd),
        alpha=alpha,
        kr20=kr20(x, w),
        sem=_clean(standard_error_of_measurement(sd, alpha)),
    )


def _group_weights(totals: np.ndarray, w: np.ndarray, fraction: float) -> np.ndarray:
    """Return each person's weight in the top ``fraction`` of ``w`` by total.

    Persons sharing a total share the same fraction, so the group holds exactly
    ``fraction * sum(w)`` and ties at the boundary are split evenly.
    """
    target = fraction * w.sum()
    levels, inverse = np.unique(np.round(totals, 9), return_inverse=True)
    mass = np.bincount(inverse, weights=w, minlength=len(levels))[::-1]  # highest first
    before = np.concatenate(([0.0], np.cumsum(mass)[:-1]))
    share = np.clip((target - before) / mass, 0.0, 1.0)[::-1]
    return w * share[inverse]


def _upper_lower(totals: np.ndarray, w: np.ndarray, fraction: float) -> tuple[np.ndarray, ...]:
    upper = _group_weights(totals, w, fraction)
    lower = _group_weights(-totals, w, fraction)
    return upper, lower


def _share(values: np.ndarray, group: np.ndarray) -> float | None:
    mass = group.sum()
    return _clean(float(group @ values / mass)) if mass > 0 else None


def _item_stats(
    j: int,
    item_id: str,
    x: np.ndarray,
    w: np.ndarray,
    totals: np.ndarray,
    mask: np.ndarray,
    fraction: float,
) -> dict[str, Any]:
    wj, xj, tj = w[mask], x[mask, j], totals[mask]
    n_presented = float(wj.sum())
    facility = _clean(_weighted_mean(xj, wj)) if n_presented > 0 else None

    k = x.shape[1]
    others = np.delete(x[mask], j, axis=1)
    counts = (~np.isnan(others)).sum(axis=1)
    has_rest = counts > 0
    rest = np.zeros(len(xj))
    np.divide(np.nansum(others, axis=1) * (k - 1), counts, out=rest, where=has_rest)
    item_rest = _correlation(xj[has_rest], rest[has_rest], wj[has_rest]) if k > 1 else None

    upper_p = lower_p = discrimination = None
    if n_presented > 0:
        upper, lower = _upper_lower(tj, wj, fraction)
        upper_p, lower_p = _share(xj, upper), _share(xj, lower)
        if upper_p is not None and lower_p is not None:
            discrimination = _clean(upper_p - lower_p)
    return {
        "index": j,
        "item_id": item_id,
        "n_presented": n_presented,
        "facility": facility,
        "point_biserial": _correlation(xj, tj, wj),
        "item_rest": item_rest,
        "upper_facility": upper_p,
        "lower_facility": lower_p,
        "discrimination_index": discrimination,
    }


def _option_stats(
    labels: np.ndarray,
    w: np.ndarray,
    totals: np.ndarray,
    offered: tuple[str, ...],
    key: str | None,
    fraction: float,
) -> tuple[tuple[OptionStats, ...], float | None]:
    """Return per-option statistics and the omitted share among persons presented."""
    n = w.sum()
    if n <= 0:
        return tuple(OptionStats(o, o == key, 0.0, None, None, None, None) for o in offered), None
    upper, lower = _upper_lower(totals, w, fraction)
    stats = []
    for option in offered:
        chose = np.array([label == option for label in labels], dtype=float)
        stats.append(
            OptionStats(
                option=option,
                is_key=option == key,
                chosen=float(w @ chose),
                proportion=_clean(float(w @ chose / n)),
                upper_proportion=_share(chose, upper),
                lower_proportion=_share(chose, lower),
                point_biserial=_correlation(chose, totals, w),
            )
        )
    omitted = np.array([label is None for label in labels], dtype=float)
    return tuple(stats), _clean(float(w @ omitted / n))


# --- flags -------------------------------------------------------------------------


def _flags(
    stats: dict[str, Any],
    options: tuple[OptionStats, ...],
    alpha: float | None,
    limits: FlagThresholds,
) -> tuple[Flag, ...]:
    flags = []
    p, r = stats["facility"], stats["item_rest"]
    if stats["n_presented"] <= 0:
        flags.append(Flag("not_presented", "presented to nobody"))
    if p is not None and p > limits.too_easy:
        flags.append(Flag("too_easy", f"too easy (p = {p:.2f} > {limits.too_easy})"))
    if p is not None and p < limits.too_hard:
        flags.append(Flag("too_hard", f"too hard (p = {p:.2f} < {limits.too_hard})"))
    if p is not None and r is None:
        flags.append(Flag("no_discrimination_data", "item-rest correlation undefined"))
    if r is not None and r < 0:
        flags.append(
            Flag("negative_discrimination", f"negative discrimination (item-rest r = {r:.2f})")
        )
    if r is not None and r < limits.low_discrimination:
        flags.append(
            Flag(
                "low_discrimination",
                f"low discrimination (item-rest r = {r:.2f} < {limits.low_discrimination})",
            )
        )
    deleted = stats["alpha_if_deleted"]
    if alpha is not None and deleted is not None and deleted > alpha:
        flags.append(
            Flag("alpha_rises_if_deleted", f"alpha rises if deleted ({alpha:.3f} -> {deleted:.3f})")
        )
    for option in options:
        if option.is_key:
            continue
        if option.chosen <= 0:
            flags.append(
                Flag("distractor_unchosen", f"distractor {option.option} chosen by nobody")
            )
        elif (
            option.upper_proportion is not None
            and option.lower_proportion is not None
            and option.upper_proportion > option.lower_proportion
        ):
            flags.append(
                Flag(
                    "distractor_attracts_upper",
                    f"distractor {option.option} attracts the upper group "
                    f"({option.upper_proportion:.2f} upper vs {option.lower_proportion:.2f} lower)",
                )
            )
    return tuple(flags)


# --- formatting --------------------------------------------------------------------


def _clean(value: float | None) -> float | None:
    """Return a plain float, None for undefined values."""
    if value is None or math.isnan(value):
        return None
    return float(value)


def _format(value: float | None, digits: int) -> str:
    if value is None:
        return ""
    return f"{round(value, digits):g}"
