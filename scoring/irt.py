"""Item response theory: item calibration and ability estimation for dichotomous items.

Pure numeric code (numpy + scipy): no Flask, no database, no clock. Arrays are
persons x items. A response is 1 (right), 0 (wrong) or NaN (item not presented to that
person, missing by design); a NaN contributes nothing to any likelihood.

Item response function (logistic, scaling constant D = 1, as in R's ``ltm`` and
``mirt``; multiply ``a`` by 1.702 to compare with normal-ogive / D = 1.702 tables)::

    P(theta) = c + (1 - c) / (1 + exp(-a (theta - b)))

``a`` discrimination (slope), ``b`` difficulty (location), ``c`` lower asymptote
(pseudo-guessing, 0 outside the 3PL). Internally the slope-intercept form
``a theta + d`` with ``d = -a b`` is optimised (better conditioned), and reported as b.

Calibration (``calibrate``) is marginal maximum likelihood with the EM algorithm
(Bock & Aitkin 1981, Psychometrika 46, 443-459): the latent trait is N(0, 1),
integrated by Gauss-Hermite quadrature; the E-step gives expected numbers of persons
``n_jk`` and of right answers ``r_jk`` for item j at node k; the M-step maximises, per
item, ``sum_k r_jk log P_j(x_k) + (n_jk - r_jk) log(1 - P_j(x_k))`` (+ log prior) with
``scipy.optimize``. EM stops when no parameter moves more than ``tolerance`` (1e-4) in
a cycle, or after ``max_cycles``. Like ``ltm`` (EM cycles, then quasi-Newton on the
marginal likelihood), the EM solution is then polished by a few Newton steps on the
marginal log-likelihood, whose gradient is exact (Fisher's identity: the expected
complete-data score under the posterior) and whose Hessian is the central difference
of that gradient. Standard errors are the square roots of the diagonal of the inverse
of the negative Hessian (observed information), with the delta method for
``b = -d / a``.

Models:

``"2pl"``  a and b free per item, c = 0. Matches ``ltm(LSAT ~ z1)``.
``"3pl"``  a, b and c free; c carries a Beta(5, 17) prior (BILOG-MG's default for
           five-option items: Beta(20 / m + 1, 20 (1 - 1 / m) + 1), m = 5) and is kept
           in [0, 0.5]; the reported log-likelihood excludes the prior.
``"rasch"`` one common discrimination for all items, theta ~ N(0, 1): the convention of
           ``ltm``'s ``rasch()`` (Rizopoulos 2006, J. Stat. Softw. 17(5)), so all three
           models share the N(0, 1) theta scale. It is the same likelihood as ``mirt``'s
           ``itemtype="Rasch"`` (slopes fixed at 1, latent variance estimated): there
           sigma = a and b_mirt = a * b. On LSAT6 this gives a = 0.755, b = -3.615,
           -1.322, -0.318, -1.730, -2.780 and log-likelihood -2466.938 (tests/test_irt.py).

Ability (``estimate_ability``): EAP with posterior SD (Bock & Mislevy 1982); MAP with
SE ``1 / sqrt(I(theta) + 1 / sigma^2)`` (prior N(0, sigma^2), sigma = 1 by default);
MLE with SE ``1 / sqrt(I(theta))``. The MLE does not exist for an all-right (all-wrong)
pattern: theta is then +inf (-inf), the SE inf and ``status`` says why; ``as_dict``
writes non-finite numbers as ``None``.

Item information (Birnbaum 1968, in Lord & Novick, Statistical Theories of Mental
Test Scores)::

    I_j(theta) = a^2 (P - c)^2 / (1 - c)^2 * (1 - P) / P      (= a^2 P (1 - P) if c = 0)

and the test information is its sum over the items.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from scipy import optimize, special

Model = Literal["rasch", "2pl", "3pl"]
MODELS: tuple[str, ...] = ("rasch", "2pl", "3pl")
AbilityMethod = Literal["eap", "map", "mle"]
ABILITY_METHODS: tuple[str, ...] = ("eap", "map", "mle")

GUESSING_PRIOR = (5.0, 17.0)  # Beta(alpha, beta) on the 3PL lower asymptote c
SLOPE_BOUNDS = (0.01, 20.0)
GUESSING_BOUNDS = (0.0, 0.5)
INTERCEPT_BOUNDS = (-50.0, 50.0)
SIGMA_BOUNDS = (0.01, 20.0)
THETA_BOUND = 8.0  # MLE/MAP search interval [-THETA_BOUND, THETA_BOUND]
WEIGHT_COLUMN = "weight"
RASCH_CONVENTION = (
    "common slope: one discrimination a shared by all items, theta ~ N(0, 1) (ltm's rasch); "
    "equivalently slope 1 with ability SD a (mirt's Rasch)"
)


# --------------------------------------------------------------------------- data


@dataclass(frozen=True)
class ResponseData:
    """Scored responses: persons x items of 1, 0 or NaN (not presented), with weights.

    ``weights[i]`` is how many persons gave row i (a frequency, so a table of response
    patterns is as good as the raw data); it defaults to 1 for every row.
    """

    responses: np.ndarray
    weights: np.ndarray = field(default=None)  # type: ignore[assignment]
    item_ids: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        responses = np.array(self.responses, dtype=float)
        if responses.ndim != 2:
            raise ValueError(f"responses must be persons x items (2-D), got {responses.ndim}-D")
        observed = ~np.isnan(responses)
        if not np.all((responses[observed] == 0) | (responses[observed] == 1)):
            raise ValueError("responses must be 1, 0 or NaN (not presented)")
        n_persons, n_items = responses.shape
        weights = (
            np.ones(n_persons)
            if self.weights is None
            else np.array(self.weights, dtype=float).reshape(-1)
        )
        if weights.shape != (n_persons,):
            raise ValueError(f"{weights.size} weights for {n_persons} persons")
        if not np.all(np.isfinite(weights) & (weights >= 0)):
            raise ValueError("weights must be finite and non-negative")
        item_ids = (
            tuple(str(i) for i in self.item_ids)
            if self.item_ids
            else tuple(f"item{j + 1}" for j in range(n_items))
        )
        if len(item_ids) != n_items:
            raise ValueError(f"{len(item_ids)} item ids for {n_items} items")
        if len(set(item_ids)) != n_items:
            raise ValueError("item ids must be unique")
        responses.setflags(write=False)
        weights.setflags(write=False)
        object.__setattr__(self, "responses", responses)
        object.__setattr__(self, "weights", weights)
        object.__setattr__(self, "item_ids", item_ids)

    @property
    def n_persons(self) -> int:
        return self.responses.shape[0]

    @property
    def n_items(self) -> int:
        return self.responses.shape[1]


def read_response_csv(path: str | Path) -> ResponseData:
    """Read a response CSV: a header of item ids, one row per candidate (or pattern).

    Cells are ``1``, ``0`` or empty (not presented). An optional column named
    ``weight`` holds the row's frequency. Raise ``ValueError`` naming the row and
    column of the first bad cell.
    """
    with open(path, newline="", encoding="utf-8-sig") as handle:
        rows = list(csv.reader(handle))
    if not rows or not any(cell.strip() for cell in rows[0]):
        raise ValueError(f"{path}: empty file, expected a header of item ids")
    header = [cell.strip() for cell in rows[0]]
    for position, name in enumerate(header, start=1):
        if not name:
            raise ValueError(f"{path}: header column {position} is empty")
    duplicates = sorted({name for name in header if header.count(name) > 1})
    if duplicates:
        raise ValueError(f"{path}: duplicate header column(s): {', '.join(duplicates)}")
    weight_column = header.index(WEIGHT_COLUMN) if WEIGHT_COLUMN in header else None
    item_columns = [j for j, name in enumerate(header) if j != weight_column]
    if not item_columns:
        raise ValueError(f"{path}: no item columns in the header")
    body = [(number, row) for number, row in enumerate(rows[1:], start=2) if row]
    if not body:
        raise ValueError(f"{path}: no response rows")
    responses = np.full((len(body), len(item_columns)), np.nan)
    weights = np.ones(len(body))
    for i, (line, row) in enumerate(body):
        if len(row) != len(header):
            raise ValueError(f"{path}: line {line} has {len(row)} cells, header has {len(header)}")
        for k, j in enumerate(item_columns):
            cell = row[j].strip()
            if cell in ("0", "1"):
                responses[i, k] = float(cell)
            elif cell:
                raise ValueError(
                    f"{path}: line {line}, column {header[j]!r}: expected 1, 0 or empty, "
                    f"got {cell!r}"
                )
        if weight_column is not None:
            weights[i] = _parse_weight(row[weight_column], f"{path}: line {line}")
    return ResponseData(responses, weights, tuple(header[j] for j in item_columns))


def _parse_weight(cell: str, where: str) -> float:
    try:
        weight = float(cell.strip())
    except ValueError:
        raise ValueError(f"{where}, column 'weight': expected a number, got {cell!r}") from None
    if not math.isfinite(weight) or weight < 0:
        raise ValueError(f"{where}, column 'weight': must be finite and >= 0, got {cell!r}")
    return weight


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class ItemParameters:
    """One item's parameters (a, b, c) and their standard errors (0 when fixed)."""

    item_id: str
    a: float
    b: float
    c: float = 0.0
    se_a: float = 0.0
    se_b: float = 0.0
    se_c: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {k: _json_number(v) for k, v in self.__dict__.items()}


@dataclass(frozen=True)
class CalibrationResult:
    """Item parameters of a calibrated model, with the fit statistics of the run."""

    model: str
    items: tuple[ItemParameters, ...]
    log_likelihood: float
    iterations: int
    converged: bool
    quadrature_points: int = 0
    n_persons: float = 0.0

    @property
    def a(self) -> np.ndarray:
        return np.array([item.a for item in self.items])

    @property
    def b(self) -> np.ndarray:
        return np.array([item.b for item in self.items])

    @property
    def c(self) -> np.ndarray:
        return np.array([item.c for item in self.items])

    def as_dict(self, scaling: float = 1.0) -> dict[str, Any]:
        """Return the calibration document (the ``scoring calibrate`` output).

        ``{"model", "D", "loglik", "converged", "iterations", "items": {id: {"a", "b",
        "c", "se_a", "se_b", "se_c"}}}``. Slopes are reported for the response function
        ``c + (1 - c) / (1 + exp(-D a (theta - b)))``: D = 1 is the metric of ltm and
        mirt; with D = 1.702 the slopes approximate the normal ogive's (a / 1.702).
        A Rasch document says which Rasch it is in ``"rasch"``.
        """
        if not (math.isfinite(scaling) and scaling > 0):
            raise ValueError("the scaling constant D must be a positive number")
        document: dict[str, Any] = {
            "model": self.model,
            "D": scaling,
            "loglik": _json_number(self.log_likelihood),
            "converged": self.converged,
            "iterations": self.iterations,
            "n_persons": self.n_persons,
            "quadrature_points": self.quadrature_points,
        }
        if self.model == "rasch":
            document["rasch"] = RASCH_CONVENTION
        document["items"] = {
            item.item_id: {
                "a": _json_number(item.a / scaling),
                "b": _json_number(item.b),
                "c": _json_number(item.c),
                "se_a": _json_number(item.se_a / scaling),
                "se_b": _json_number(item.se_b),
                "se_c": _json_number(item.se_c),
            }
            for item in self.items
        }
        return document


def parameters_from_document(document: Any, name: str = "parameters") -> tuple[ItemParameters, ...]:
    """Read item parameters from a calibration document (``CalibrationResult.as_dict``).

    Slopes are returned in the D = 1 metric whatever the document's ``D``, so documents
    written with ``--scaling 1.702`` and without can be mixed. Raise ``ValueError``
    naming the first problem.
    """
    if not isinstance(document, Mapping) or not isinstance(document.get("items"), Mapping):
        raise ValueError(f"{name}: a calibration document needs 'items': {{id: {{a, b, c}}}}")
    scaling = document.get("D", 1.0)
    if isinstance(scaling, bool) or not isinstance(scaling, int | float) or not scaling > 0:
        raise ValueError(f"{name}: D must be a positive number")
    items = []
    for item_id, values in document["items"].items():
        try:
            a, b = float(values["a"]) * scaling, float(values["b"])
            c = float(values.get("c") or 0.0)
            errors = [float(values.get(k) or 0.0) for k in ("se_a", "se_b", "se_c")]
        except (AttributeError, KeyError, TypeError, ValueError):
            raise ValueError(f"{name}: item {item_id!r} needs numbers a and b") from None
        if not (math.isfinite(a) and a > 0 and math.isfinite(b) and 0 <= c < 1):
            raise ValueError(
                f"{name}: item {item_id!r} has a={a}, b={b}, c={c}; "
                "need a > 0, finite b and 0 <= c < 1"
            )
        items.append(ItemParameters(str(item_id), a, b, c, errors[0] * scaling, *errors[1:]))
    if not items:
        raise ValueError(f"{name}: the document has no items")
    return tuple(items)


@dataclass(frozen=True)
class AbilityEstimates:
    """Per-person ability estimates and standard errors (EAP: posterior SD).

    ``status`` is "ok", "all_right", "all_wrong", "no_responses" or (MLE only)
    "unbounded": a mixed pattern whose likelihood keeps rising beyond
    +-``THETA_BOUND`` (possible under the 3PL). For MLE every status but "ok" comes
    with theta +-inf (NaN for no responses) and SE inf; EAP and MAP are always finite.
    """

    method: str
    theta: np.ndarray
    se: np.ndarray
    status: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "theta": [_json_number(v) for v in self.theta],
            "se": [_json_number(v) for v in self.se],
            "status": list(self.status),
        }


def _json_number(value: Any) -> Any:
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    return value


_Params = CalibrationResult | Sequence[ItemParameters]


# --------------------------------------------------------------------------- model


def _log_sigmoid(z: np.ndarray) -> np.ndarray:
    return -np.logaddexp(0.0, -z)


def _log_probabilities(
    z: np.ndarray, c: np.ndarray | float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return P, log P and log(1 - P) for logits z and lower asymptotes c (broadcast)."""
    c = np.broadcast_to(np.asarray(c, dtype=float), np.shape(z))
    s = special.expit(z)
    log_c = np.full(c.shape, -np.inf)
    np.log(c, out=log_c, where=c > 0)
    log_p = np.logaddexp(log_c, np.log1p(-c) + _log_sigmoid(z))
    log_q = np.log1p(-c) + _log_sigmoid(-z)
    return c + (1 - c) * s, log_p, log_q


def probability(theta: np.ndarray | float, params: _Params) -> np.ndarray:
    """Return P(right) for each theta (rows) and item (columns)."""
    a, b, c = _abc(params)
    theta = np.atleast_1d(np.asarray(theta, dtype=float))
    return c + (1 - c) * special.expit(a * (theta[:, None] - b))


def item_information(theta: np.ndarray | float, params: _Params) -> np.ndarray:
    """Return Birnbaum's item information, thetas x items (see the module docstring)."""
    a, b, c = _abc(params)
    theta = np.atleast_1d(np.asarray(theta, dtype=float))
    z = a * (theta[:, None] - b)
    s = special.expit(z)
    p = c + (1 - c) * s
    # (P - c)^2 / (1 - c)^2 * (1 - P) / P = s^2 (1 - c)(1 - s) / P, stable at any theta
    return a**2 * s**2 * (1 - c) * (1 - s) / p


def test_information(theta: np.ndarray | float, params: _Params) -> np.ndarray:
    """Return the test information (sum of item information) at each theta."""
    return item_information(theta, params).sum(axis=1)


test_information.__test__ = False  # type: ignore[attr-defined]  # not a pytest test


def _abc(params: _Params) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    items = params.items if isinstance(params, CalibrationResult) else tuple(params)
    return (
        np.array([item.a for item in items], dtype=float),
        np.array([item.b for item in items], dtype=float),
        np.array([item.c for item in items], dtype=float),
    )


def _quadrature(n_points: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Hermite nodes and weights for N(0, 1) (probabilists' Hermite, weights sum 1)."""
    nodes, weights = np.polynomial.hermite_e.hermegauss(n_points)
    return nodes, weights / weights.sum()


# --------------------------------------------------------------------------- calibration


@dataclass
class _State:
    """Free parameters: slope a, intercept d, asymptote c (Rasch: sigma, the common a)."""

    a: np.ndarray
    d: np.ndarray
    c: np.ndarray
    sigma: float = 1.0


class _Calibrator:
    """The EM machinery for one data set and model (private; see ``calibrate``)."""

    def __init__(self, data: ResponseData, model: str, quadrature_points: int) -> None:
        self.model = model
        self.nodes, self.node_weights = _quadrature(quadrature_points)
        self.log_node_weights = np.log(self.node_weights)
        observed = ~np.isnan(data.responses)
        keep = data.weights > 0
        self.right = np.nan_to_num(data.responses)[keep]
        self.wrong = (observed & (data.responses == 0))[keep].astype(float)
        self.weights = data.weights[keep]
        self.n_items = data.n_items
        self.complete = bool(observed[keep].all())

    # --- parameter vectors: 2pl (a, d), 3pl (a, d, c), rasch (d, sigma)
    def pack(self, state: _State) -> np.ndarray:
        if self.model == "rasch":
            return np.append(state.d, state.sigma)
        if self.model == "2pl":
            return np.concatenate([state.a, state.d])
        return np.concatenate([state.a, state.d, state.c])

    def unpack(self, vector: np.ndarray) -> _State:
        j = self.n_items
        zeros = np.zeros(j)
        if self.model == "rasch":
            sigma = float(vector[j])
            return _State(np.full(j, sigma), vector[:j].copy(), zeros, sigma)
        if self.model == "2pl":
            return _State(vector[:j].copy(), vector[j : 2 * j].copy(), zeros)
        return _State(vector[:j].copy(), vector[j : 2 * j].copy(), vector[2 * j :].copy())

    def bounds(self) -> list[tuple[float, float]]:
        j = self.n_items
        if self.model == "rasch":
            return [INTERCEPT_BOUNDS] * j + [SIGMA_BOUNDS]
        pairs = [SLOPE_BOUNDS] * j + [INTERCEPT_BOUNDS] * j
        return pairs + ([GUESSING_BOUNDS] * j if self.model == "3pl" else [])

    # --- E-step
    def e_step(self, state: _State) -> tuple[float, np.ndarray, np.ndarray]:
        """Return the marginal log-likelihood and expected counts r, n (items x nodes)."""
        z = state.a[:, None] * self.nodes[None, :] + state.d[:, None]
        _, log_p, log_q = _log_probabilities(z, state.c[:, None])
        # log-likelihood of each person's observed responses at each node: persons x nodes
        log_joint = self.right @ log_p + self.wrong @ log_q + self.log_node_weights
        log_marginal = special.logsumexp(log_joint, axis=1)
        posterior = np.exp(log_joint - log_marginal[:, None]) * self.weights[:, None]
        r = self.right.T @ posterior
        n = r + self.wrong.T @ posterior
        return float(self.weights @ log_marginal), r, n

    # --- the expected complete-data log-likelihood of one item and its gradient
    def item_objective(
        self, params: np.ndarray, r: np.ndarray, n: np.ndarray, fixed_c: float | None
    ) -> tuple[float, np.ndarray]:
        a, d = params[0], params[1]
        c = params[2] if fixed_c is None else fixed_c
        z = a * self.nodes + d
        p, log_p, log_q = _log_probabilities(z, c)
        value = r @ log_p + (n - r) @ log_q
        g_z, g_c = _logit_scores(z, p, c, r, n)
        gradient = [g_z @ self.nodes, g_z.sum()]
        if fixed_c is None:
            value += _log_guessing_prior(c)
            gradient.append(g_c.sum() + _d_log_guessing_prior(c))
        return -value, -np.array(gradient)

    def rasch_objective(
        self, vector: np.ndarray, r: np.ndarray, n: np.ndarray
    ) -> tuple[float, np.ndarray]:
        d, sigma = vector[:-1], vector[-1]
        z = sigma * self.nodes[None, :] + d[:, None]
        p, log_p, log_q = _log_probabilities(z, 0.0)
        value = np.sum(r * log_p + (n - r) * log_q)
        g_z, _ = _logit_scores(z, p, 0.0, r, n)
        gradient = np.append(g_z.sum(axis=1), np.sum(g_z * self.nodes[None, :]))
        return -value, -gradient

    # --- M-step
    def m_step(self, state: _State, r: np.ndarray, n: np.ndarray) -> _State:
        if self.model == "rasch":
            vector = self.pack(state)
            found = optimize.minimize(
                self.rasch_objective,
                vector,
                args=(r, n),
                jac=True,
                method="L-BFGS-B",
                bounds=self.bounds(),
                options={"ftol": 1e-13, "gtol": 1e-9},
            )
            return self.unpack(found.x)
        new = _State(state.a.copy(), state.d.copy(), state.c.copy())
        is_3pl = self.model == "3pl"
        bounds = [SLOPE_BOUNDS, INTERCEPT_BOUNDS] + ([GUESSING_BOUNDS] if is_3pl else [])
        for j in range(self.n_items):
            start = [state.a[j], state.d[j]] + ([state.c[j]] if is_3pl else [])
            found = optimize.minimize(
                self.item_objective,
                np.array(start),
                args=(r[j], n[j], None if is_3pl else 0.0),
                jac=True,
                method="L-BFGS-B",
                bounds=bounds,
                options={"ftol": 1e-13, "gtol": 1e-9},
            )
            new.a[j], new.d[j] = found.x[0], found.x[1]
            if is_3pl:
                new.c[j] = found.x[2]
        return new

    # --- the observed-data log posterior, its gradient (Fisher's identity) and Hessian
    def log_posterior_gradient(self, vector: np.ndarray) -> tuple[float, np.ndarray]:
        state = self.unpack(vector)
        log_likelihood, r, n = self.e_step(state)
        if self.model == "rasch":
            gradient = self.rasch_objective(vector, r, n)[1]
            return log_likelihood, -gradient
        parts = [
            -self.item_objective(
                np.array([state.a[j], state.d[j], state.c[j]]),
                r[j],
                n[j],
                None if self.model == "3pl" else 0.0,
            )[1]
            for j in range(self.n_items)
        ]
        gradient = np.concatenate([[g[k] for g in parts] for k in range(len(parts[0]))])
        prior = np.sum(_log_guessing_prior(state.c)) if self.model == "3pl" else 0.0
        return log_likelihood + prior, gradient

    def hessian(self, vector: np.ndarray) -> np.ndarray:
        """The Hessian of the marginal log posterior: exact for the 2PL on complete data
        (``louis_hessian``), else central differences of the exact gradient."""
        if self.model == "2pl" and self.complete:
            return self.louis_hessian(vector)
        return self.difference_hessian(vector)

    def louis_hessian(self, vector: np.ndarray) -> np.ndarray:
        """The observed-information matrix of the 2PL in closed form (Louis 1982).

        For person i at node k the complete-data score of item j is
        r_ijk (theta_k, 1) with r_ijk = x_ij - P_jk, and its Hessian
        -P_jk Q_jk (theta_k^2, theta_k; theta_k, 1). With posterior weights pi_ik and
        frequencies f_i, the marginal Hessian is
        sum_i f_i [sum_k pi_ik (H_ik + g_ik g_ik') - gbar_i gbar_i'], gbar_i the
        posterior mean score. Every sum over persons and nodes is a matrix product, so
        the whole matrix costs a few passes over the data instead of one E-step per
        parameter; the result equals ``difference_hessian`` to its rounding.
        """
        state = self.unpack(vector)
        j = self.n_items
        z = state.a[:, None] * self.nodes[None, :] + state.d[:, None]
        p, log_p, log_q = _log_probabilities(z, 0.0)
        log_joint = self.right @ log_p + self.wrong @ log_q + self.log_node_weights
        posterior = np.exp(log_joint - special.logsumexp(log_joint, axis=1)[:, None])
        weighted = posterior * self.weights[:, None]
        x = self.right
        powers = [self.nodes**m for m in range(3)]
        cross = []  # sum_i f_i sum_k pi_ik theta^m r_ijk r_ilk, m = 0, 1, 2
        for m in range(3):
            a_m = weighted * powers[m][None, :]
            ap = a_m @ p.T  # persons x items
            first = x.T @ (x * a_m.sum(axis=1)[:, None])
            middle = x.T @ ap
            last = (p * a_m.sum(axis=0)[None, :]) @ p.T
            cross.append(first - middle - middle.T + last)
        curvature = [-(p * (1 - p) * (posterior.T @ self.weights)[None, :]) @ w for w in powers]
        mean_scores = []  # gbar for a (theta^1) and d (theta^0): persons x items
        for m in (1, 0):
            b_m = posterior * powers[m][None, :]
            mean_scores.append(x * b_m.sum(axis=1)[:, None] - b_m @ p.T)
        weighted_scores = [g * self.weights[:, None] for g in mean_scores]
        hessian = np.empty((2 * j, 2 * j))
        for s_index, s_power in enumerate((1, 0)):
            for t_index, t_power in enumerate((1, 0)):
                block = cross[s_power + t_power] - mean_scores[s_index].T @ weighted_scores[t_index]
                block[np.diag_indices(j)] += curvature[s_power + t_power]
                hessian[s_index * j : (s_index + 1) * j, t_index * j : (t_index + 1) * j] = block
        return (hessian + hessian.T) / 2

    def difference_hessian(self, vector: np.ndarray) -> np.ndarray:
        size = vector.size
        hessian = np.empty((size, size))
        for k in range(size):
            step = 1e-5 * max(1.0, abs(vector[k]))
            up, down = vector.copy(), vector.copy()
            up[k] += step
            down[k] -= step
            hessian[:, k] = (
                self.log_posterior_gradient(up)[1] - self.log_posterior_gradient(down)[1]
            ) / (2 * step)
        return (hessian + hessian.T) / 2

    def newton_polish(self, vector: np.ndarray, steps: int = 5) -> np.ndarray:
        """Take Newton steps on the marginal log posterior while they improve it."""
        lower, upper = np.array(self.bounds()).T
        value, gradient = self.log_posterior_gradient(vector)
        for _ in range(steps):
            hessian = self.hessian(vector)
            try:
                step = np.linalg.solve(hessian, -gradient)
            except np.linalg.LinAlgError:
                break
            if not np.all(np.isfinite(step)) or gradient @ step <= 0:
                break  # not an ascent direction: the Hessian is not negative definite
            for _halving in range(10):
                candidate = np.clip(vector + step, lower, upper)
                new_value, new_gradient = self.log_posterior_gradient(candidate)
                if new_value >= value:
                    break
                step = step / 2
            else:
                break
            moved = np.max(np.abs(candidate - vector))
            vector, value, gradient = candidate, new_value, new_gradient
            if moved < 1e-8:
                break
        return vector


def _logit_scores(
    z: np.ndarray, p: np.ndarray, c: np.ndarray | float, r: np.ndarray, n: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Derivatives of r log P + (n - r) log(1 - P) by the logit z and by c.

    With s = expit(z) and P = c + (1 - c) s: dP/dz = (1 - c) s (1 - s) and
    1 - P = (1 - c)(1 - s), so d/dz = (r - n P) s / P and d/dc = (r - n P) / (P (1 - c)).
    """
    residual = r - n * p
    return residual * special.expit(z) / p, residual / (p * (1 - np.asarray(c)))


def _log_guessing_prior(c: np.ndarray | float) -> np.ndarray | float:
    alpha, beta = GUESSING_PRIOR
    c = np.clip(c, 1e-10, 1 - 1e-10)
    return (alpha - 1) * np.log(c) + (beta - 1) * np.log1p(-c)


def _d_log_guessing_prior(c: float) -> float:
    alpha, beta = GUESSING_PRIOR
    c = min(max(c, 1e-10), 1 - 1e-10)
    return (alpha - 1) / c - (beta - 1) / (1 - c)


def calibrate(
    data: ResponseData,
    model: Model = "2pl",
    *,
    quadrature_points: int = 61,
    max_cycles: int = 2000,
    tolerance: float = 1e-4,
    polish: bool = True,
) -> CalibrationResult:
    """Estimate item parameters by marginal maximum likelihood (EM, Bock & Aitkin 1981).

    See the module docstring for the model conventions. ``converged`` is True when an
    EM cycle moved no parameter (a, b, c, latent SD) more than ``tolerance``.
    """
    if model not in MODELS:
        raise ValueError(f"unknown model {model!r}; expected one of {', '.join(MODELS)}")
    _check_calibration_data(data)
    calibrator = _Calibrator(data, model, quadrature_points)
    state = _starting_values(data, model)
    converged = False
    cycles = 0
    previous = _reported(state, model)
    while cycles < max_cycles:
        cycles += 1
        _, r, n = calibrator.e_step(state)
        state = calibrator.m_step(state, r, n)
        current = _reported(state, model)
        if np.max(np.abs(current - previous)) < tolerance:
            converged = True
            break
        previous = current
    vector = calibrator.pack(state)
    if polish and converged:
        vector = calibrator.newton_polish(vector)
    state = calibrator.unpack(vector)
    log_likelihood = calibrator.e_step(state)[0]
    covariance = _covariance(calibrator.hessian(vector))
    return CalibrationResult(
        model=model,
        items=_item_parameters(data.item_ids, state, covariance, model),
        log_likelihood=log_likelihood,
        iterations=cycles,
        converged=converged,
        quadrature_points=quadrature_points,
        n_persons=float(data.weights.sum()),
    )


def _check_calibration_data(data: ResponseData) -> None:
    observed = ~np.isnan(data.responses) & (data.weights[:, None] > 0)
    for j, item_id in enumerate(data.item_ids):
        values = data.responses[observed[:, j], j]
        if values.size == 0:
            raise ValueError(f"item {item_id!r} has no responses")
        if np.all(values == values[0]):
            raise ValueError(
                f"item {item_id!r} cannot be calibrated: every response is {int(values[0])}"
            )


def _starting_values(data: ResponseData, model: str) -> _State:
    """Start from logits of the item proportions right (slopes 1, c = 0.2 for the 3PL)."""
    observed = ~np.isnan(data.responses)
    right = np.nan_to_num(data.responses).T @ data.weights
    presented = observed.T.astype(float) @ data.weights
    proportion = np.clip(right / presented, 0.01, 0.99)
    j = data.n_items
    c = np.full(j, 0.2) if model == "3pl" else np.zeros(j)
    adjusted = np.clip((proportion - c) / (1 - c), 0.01, 0.99)
    return _State(np.ones(j), special.logit(adjusted), c, 1.0)


def _reported(state: _State, model: str) -> np.ndarray:
    return np.concatenate([state.a, -state.d / state.a, state.c, [state.sigma]])


def _covariance(hessian: np.ndarray) -> np.ndarray:
    try:
        return np.linalg.inv(-hessian)
    except np.linalg.LinAlgError:
        return np.full(hessian.shape, np.nan)


def _se(variance: float) -> float:
    return math.sqrt(variance) if np.isfinite(variance) and variance > 0 else math.nan


def _item_parameters(
    item_ids: tuple[str, ...], state: _State, covariance: np.ndarray, model: str
) -> tuple[ItemParameters, ...]:
    j = len(item_ids)
    items = []
    for k, item_id in enumerate(item_ids):
        a, d = state.a[k], state.d[k]
        if model == "rasch":
            # the common slope sigma is shared by all items: b = -d / sigma
            sigma = state.sigma
            ids = [k, j]  # d_k, sigma
            gradient_b = np.array([-1 / sigma, d / sigma**2])
            variance_b = gradient_b @ covariance[np.ix_(ids, ids)] @ gradient_b
            se_a = _se(covariance[j, j])
            items.append(
                ItemParameters(item_id, float(sigma), float(-d / sigma), 0.0, se_a, _se(variance_b))
            )
            continue
        ids = [k, j + k]  # a_k, d_k
        gradient_b = np.array([d / a**2, -1 / a])
        variance_b = gradient_b @ covariance[np.ix_(ids, ids)] @ gradient_b
        se_c = _se(covariance[2 * j + k, 2 * j + k]) if model == "3pl" else 0.0
        items.append(
            ItemParameters(
                item_id,
                float(a),
                float(-d / a),
                float(state.c[k]),
                _se(covariance[k, k]),
                _se(variance_b),
                se_c,
            )
        )
    return tuple(items)


# --------------------------------------------------------------------------- ability


def estimate_ability(
    responses: ResponseData | np.ndarray,
    params: _Params,
    method: AbilityMethod = "eap",
    *,
    quadrature_points: int = 61,
    prior_sd: float = 1.0,
) -> AbilityEstimates:
    """Estimate each person's theta by EAP, MAP or MLE (see the module docstring).

    ``responses`` is persons x items (one row is one person; a 1-D array is one person)
    in the item order of ``params``. The EAP/MAP prior is N(0, prior_sd^2), the scale
    on which every model is calibrated when ``prior_sd`` is 1.
    """
    if method not in ABILITY_METHODS:
        raise ValueError(f"unknown method {method!r}; expected one of {', '.join(ABILITY_METHODS)}")
    matrix = _response_matrix(responses, params)
    a, b, c = _abc(params)
    if not prior_sd > 0:
        raise ValueError(f"prior_sd must be positive, got {prior_sd}")
    status = _patterns(matrix)
    if method == "eap":
        theta, se = _eap(matrix, a, b, c, prior_sd, quadrature_points)
    else:
        theta, se = _mode(matrix, a, b, c, prior_sd if method == "map" else None)
        if method == "mle":
            status = _mle_status(status, theta)
            infinite = {"all_right": np.inf, "all_wrong": -np.inf, "no_responses": np.nan}
            for i, kind in enumerate(status):
                if kind == "unbounded":
                    theta[i], se[i] = math.copysign(np.inf, theta[i]), np.inf
                elif kind != "ok":
                    theta[i], se[i] = infinite[kind], np.inf
    return AbilityEstimates(method, theta, se, status)


def _mle_status(status: tuple[str, ...], theta: np.ndarray) -> tuple[str, ...]:
    """Mark mixed patterns whose likelihood still rises at the edge of the search (3PL)."""
    at_edge = np.abs(theta) >= THETA_BOUND - 1e-6
    return tuple(
        "unbounded" if kind == "ok" and edge else kind
        for kind, edge in zip(status, at_edge, strict=True)
    )


def _response_matrix(responses: ResponseData | np.ndarray, params: _Params) -> np.ndarray:
    items = params.items if isinstance(params, CalibrationResult) else tuple(params)
    if isinstance(responses, ResponseData):
        ids = tuple(item.item_id for item in items)
        if responses.item_ids != ids:
            raise ValueError("the response items do not match the calibrated items")
        matrix = responses.responses
    else:
        matrix = np.atleast_2d(np.asarray(responses, dtype=float))
    if matrix.ndim != 2 or matrix.shape[1] != len(items):
        raise ValueError(f"responses must have {len(items)} item columns")
    if not np.all((matrix == 0) | (matrix == 1) | np.isnan(matrix)):
        raise ValueError("responses must be 1, 0 or NaN (not presented)")
    return matrix


def _patterns(matrix: np.ndarray) -> tuple[str, ...]:
    observed = ~np.isnan(matrix)
    presented = observed.sum(axis=1)
    right = np.nansum(matrix, axis=1)
    return tuple(
        "no_responses" if m == 0 else "all_right" if r == m else "all_wrong" if r == 0 else "ok"
        for m, r in zip(presented, right, strict=True)
    )


def _person_log_likelihood(
    matrix: np.ndarray, theta: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray
) -> np.ndarray:
    """Log-likelihood of each person's responses at each theta: persons x thetas.

    Written as right @ (log P - log Q) + presented @ log Q: one matrix product of floats
    (a boolean operand would leave BLAS), and for complete data the second term is a
    column sum.
    """
    _, log_p, log_q = _log_probabilities(a[:, None] * (theta[None, :] - b[:, None]), c[:, None])
    presented = ~np.isnan(matrix)
    if presented.all():
        return matrix @ (log_p - log_q) + log_q.sum(axis=0)
    return np.where(presented, matrix, 0.0) @ (log_p - log_q) + presented.astype(float) @ log_q


def _eap(
    matrix: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray, sd: float, points: int
) -> tuple[np.ndarray, np.ndarray]:
    nodes, weights = _quadrature(points)
    theta = sd * nodes
    posterior = _person_log_likelihood(matrix, theta, a, b, c) + np.log(weights)
    posterior -= posterior.max(axis=1, keepdims=True)  # in place: persons x nodes is large
    np.exp(posterior, out=posterior)
    posterior /= posterior.sum(axis=1, keepdims=True)
    mean = posterior @ theta
    variance = posterior @ theta**2 - mean**2
    return mean, np.sqrt(np.maximum(variance, 0.0))


def _mode(
    matrix: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray, sd: float | None
) -> tuple[np.ndarray, np.ndarray]:
    """Maximise the likelihood (sd None) or posterior by grid search then Fisher scoring.

    Fisher scoring uses the expected information, which is positive also for the 3PL
    (where the observed information need not be); the step is kept inside the grid cell
    neighbourhood and the search interval [-THETA_BOUND, THETA_BOUND].
    """
    grid = np.linspace(-THETA_BOUND, THETA_BOUND, 321)
    objective = _person_log_likelihood(matrix, grid, a, b, c)
    if sd is not None:
        objective = objective - grid**2 / (2 * sd**2)
    theta = grid[np.argmax(objective, axis=1)]
    observed = ~np.isnan(matrix)
    right = np.nan_to_num(matrix)
    for _ in range(50):
        z = a * (theta[:, None] - b)
        s = special.expit(z)
        p = c + (1 - c) * s
        score = np.sum(observed * (right - p) * a * s / p, axis=1)
        information = np.sum(observed * a**2 * s**2 * (1 - c) * (1 - s) / p, axis=1)
        if sd is not None:
            score -= theta / sd**2
            information += 1 / sd**2
        step = np.clip(score / np.maximum(information, 1e-12), -0.5, 0.5)
        theta = np.clip(theta + step, -THETA_BOUND, THETA_BOUND)
        if np.max(np.abs(step)) < 1e-10:
            break
    z = a * (theta[:, None] - b)
    s = special.expit(z)
    p = c + (1 - c) * s
    information = np.sum(observed * a**2 * s**2 * (1 - c) * (1 - s) / p, axis=1)
    if sd is not None:
        information += 1 / sd**2
    with np.errstate(divide="ignore"):
        se = np.where(information > 0, 1 / np.sqrt(np.maximum(information, 1e-300)), np.inf)
    return theta, se
