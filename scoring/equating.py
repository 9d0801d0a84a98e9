"""IRT scale linking: put form X's item parameters on form Y's theta scale.

Pure numeric code (numpy + scipy): no Flask, no database, no clock. Two calibrations
(calibration documents, ``CalibrationResult.as_dict()``, in any D metric) of forms X
("from") and Y ("to") each fix their own N(0, 1) theta scale; items with the same
``item_id`` in both are the anchors (common items, non-equivalent groups anchor test
design). Item response function as in ``scoring.irt`` (D = 1)::

    P(theta) = c + (1 - c) / (1 + exp(-a (theta - b)))

The scales are related by the linear transformation (Kolen & Brennan 2014, Test
Equating, Scaling, and Linking, 3rd ed., ch. 6)::

    theta_Y = A theta_X + B,   a_Y = a_X / A,   b_Y = A b_X + B,   c_Y = c_X

Methods (``METHODS``), for the J anchors with parameters (a_Xj, b_Xj, c_Xj) and
(a_Yj, b_Yj, c_Yj):

``"mean-mean"``    A = mean(a_X) / mean(a_Y) (Loyd & Hoover 1980, J. Educ. Meas. 17,
                   179-193), B = mean(b_Y) - A mean(b_X).
``"mean-sigma"``   A = sd(b_Y) / sd(b_X) (Marco 1977, J. Educ. Meas. 14, 139-160),
                   B = mean(b_Y) - A mean(b_X).
``"haebara"``      minimise over (A, B) the sum over anchors j and grid points k of
                   w_k [P_j(theta_k; a_Yj, b_Yj, c_Yj) - P_j(theta_k; a_Xj / A,
                   A b_Xj + B, c_Xj)]^2 (Haebara 1980, Jpn. Psychol. Res. 22, 144-149).
``"stocking-lord"`` minimise w_k [sum_j P_j(theta_k; Y) - sum_j P_j(theta_k; X -> Y)]^2
                   summed over k: the squared difference of the anchors' test
                   characteristic curves (Stocking & Lord 1983, Appl. Psychol. Meas. 7,
                   201-210).

By default the characteristic-curve criteria are symmetric, as in Haebara's original
criterion and Kolen's STUIRT: X's anchors put on Y's scale and compared with Y's on Y's
grid (the one-directional form of Kolen & Brennan 2014, ch. 6), plus Y's anchors put on
X's scale (a_Y A, (b_Y - B) / A) and compared with X's on X's grid. The default grid is
``THETA_GRID``: 41 equally spaced points from -4 to 4 (step 0.2), weighted by the
N(0, 1) density normalised to sum 1 (``GRID_WEIGHTS``), for both directions; other
grids (points and weights, used as given) may be passed, one per scale.
``symmetric=False`` keeps the X-to-Y direction only. With the ability distributions as
grids, Kolen's STUIRT example 1 is reproduced (tests/test_equating.py). Both criteria are
sums of squared residuals, minimised by
``scipy.optimize.least_squares`` (trust-region reflective, exact Jacobian, A > 0) from
the mean-sigma solution. When Y's anchors are an exact linear transformation of X's,
every method returns that transformation (the criteria are then zero at it).

The sd in mean-sigma is the population sd (divide by J); A does not depend on the
choice. Mean-sigma needs anchors of different difficulty, mean-mean none.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from scipy import optimize, special

from scoring.irt import CalibrationResult, parameters_from_document

Method = Literal["mean-mean", "mean-sigma", "haebara", "stocking-lord"]
METHODS: tuple[str, ...] = ("mean-mean", "mean-sigma", "haebara", "stocking-lord")
MIN_ANCHORS = 2
THETA_GRID = np.linspace(-4.0, 4.0, 41)
GRID_WEIGHTS = np.exp(-(THETA_GRID**2) / 2) / np.exp(-(THETA_GRID**2) / 2).sum()
SLOPE_FLOOR = 1e-6  # A is kept above this in the characteristic-curve searches

Params = Mapping[str, Any] | CalibrationResult
Grid = tuple[Sequence[float] | np.ndarray, Sequence[float] | np.ndarray]  # (theta, weights)


@dataclass(frozen=True)
class _Anchors:
    """Anchor parameters, aligned: X's and Y's a, b, c for the same item ids."""

    item_ids: tuple[str, ...]
    x: tuple[np.ndarray, np.ndarray, np.ndarray]
    y: tuple[np.ndarray, np.ndarray, np.ndarray]


@dataclass(frozen=True)
class Linking:
    """The transformation theta_Y = A theta_X + B found by ``method`` from ``anchors``.

    ``criterion`` is the minimised Haebara or Stocking-Lord loss, the weighted sum of
    squares of the module docstring (both directions if ``symmetric``); None for the
    moment methods.
    """

    method: str
    model: str
    A: float
    B: float
    anchors: tuple[str, ...]
    criterion: float | None = None
    symmetric: bool = False

    def transform_theta(self, theta: np.ndarray | float) -> np.ndarray:
        """Return abilities on X's scale expressed on Y's scale: A theta + B."""
        return self.A * np.asarray(theta, dtype=float) + self.B

    def transform(self, params: Params) -> dict[str, Any]:
        """Return ``params`` (form X, calibrate JSON) with every item on Y's scale.

        a / A, A b + B, c unchanged; standard errors follow with A and B taken as
        known: se_a / A, A se_b, se_c. Other top-level keys are copied.
        """
        data = _as_mapping(params)
        if data.get("model") != self.model:
            raise ValueError(
                f"the linking is for model {self.model!r}, the parameters are {data.get('model')!r}"
            )
        parameters_from_document(data, "params")  # refuse what cannot be transformed
        items = {}
        for item_id, item in data["items"].items():
            converted = dict(item)
            converted["a"] = float(item["a"]) / self.A
            converted["b"] = self.A * float(item["b"]) + self.B
            if item.get("se_a") is not None:
                converted["se_a"] = float(item["se_a"]) / self.A
            if item.get("se_b") is not None:
                converted["se_b"] = self.A * float(item["se_b"])
            items[item_id] = converted
        result = dict(data)
        result["items"] = items
        return result

    def as_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "model": self.model,
            "A": self.A,
            "B": self.B,
            "anchors": list(self.anchors),
            "criterion": self.criterion,
            "symmetric": self.symmetric,
        }


def link(
    from_params: Params,
    to_params: Params,
    method: Method = "stocking-lord",
    *,
    grid: Grid | None = None,
    symmetric: bool = True,
    from_grid: Grid | None = None,
) -> Linking:
    """Find A and B putting form X (``from_params``) on form Y's scale (``to_params``).

    Both are calibration documents (``CalibrationResult.as_dict()``) of one model. For the
    characteristic-curve methods, ``grid`` is (theta points, weights) on Y's scale
    (default ``THETA_GRID``, ``GRID_WEIGHTS``); ``symmetric`` adds the Y-to-X criterion
    on ``from_grid`` on X's scale (default: the same grid); the moment methods ignore
    ``grid`` and ``symmetric``. Raise ``ValueError`` for an unknown method, different
    models, fewer than two anchors or parameters that cannot be linked (see the module
    docstring).
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; expected one of {', '.join(METHODS)}")
    x_data, y_data = _as_mapping(from_params), _as_mapping(to_params)
    model_x, model_y = x_data.get("model"), y_data.get("model")
    if model_x != model_y:
        raise ValueError(
            f"cannot link different models: form X is {model_x!r}, form Y is {model_y!r}"
        )
    anchors = _anchors(x_data, y_data)
    criterion: float | None = None
    if method == "mean-mean":
        A, B = _mean_mean(anchors)
    elif method == "mean-sigma":
        A, B = _mean_sigma(anchors)
    else:
        if from_grid is not None and not symmetric:
            raise ValueError("from_grid is used only by the symmetric criterion")
        to_grid = _grid(grid, "grid")
        back_grid = None
        if symmetric:
            back_grid = to_grid if from_grid is None else _grid(from_grid, "from_grid")
        A, B, criterion = _characteristic_curve(anchors, method, to_grid, back_grid)
    return Linking(
        method,
        str(model_x),
        float(A),
        float(B),
        anchors.item_ids,
        criterion,
        symmetric=bool(symmetric) and criterion is not None,
    )


# --------------------------------------------------------------------------- input


def read_quadrature(document: Any) -> dict[str, Grid]:
    """Return ``link``'s grids from ``{"points", "x_weights", "y_weights"}``.

    The points serve both scales; ``x_points`` / ``y_points`` give each scale its own
    (STUIRT's input for ability distributions estimated on each form). The grids are
    checked by ``link``.
    """
    if not isinstance(document, Mapping):
        raise ValueError('the quadrature must be {"points", "x_weights", "y_weights"}')
    grids = {}
    for scale, argument in (("y", "grid"), ("x", "from_grid")):
        points = document.get(f"{scale}_points", document.get("points"))
        weights = document.get(f"{scale}_weights")
        if not isinstance(points, list) or not isinstance(weights, list):
            raise ValueError(f"the quadrature needs points and {scale}_weights (lists of numbers)")
        try:
            grids[argument] = (
                np.array(points, dtype=float),
                np.array(weights, dtype=float),
            )
        except (TypeError, ValueError):
            raise ValueError(
                f"the quadrature's points and {scale}_weights must be numbers"
            ) from None
    return grids


def _as_mapping(params: Params) -> Mapping[str, Any]:
    if isinstance(params, CalibrationResult):
        return params.as_dict()
    if not isinstance(params, Mapping):
        raise ValueError("parameters must be a calibration document with 'model' and 'items'")
    return params


def _form(data: Mapping[str, Any], name: str) -> dict[str, tuple[float, float, float]]:
    return {item.item_id: (item.a, item.b, item.c) for item in parameters_from_document(data, name)}


def _anchors(x_data: Mapping[str, Any], y_data: Mapping[str, Any]) -> _Anchors:
    x_form, y_form = _form(x_data, "form X"), _form(y_data, "form Y")
    common = tuple(item_id for item_id in x_form if item_id in y_form)
    if len(common) < MIN_ANCHORS:
        raise ValueError(
            f"linking needs at least {MIN_ANCHORS} anchor items (same item_id in both "
            f"forms), found {len(common)}" + (f": {', '.join(common)}" if common else "")
        )
    x = np.array([x_form[i] for i in common]).T
    y = np.array([y_form[i] for i in common]).T
    return _Anchors(common, (x[0], x[1], x[2]), (y[0], y[1], y[2]))


# --------------------------------------------------------------------------- methods


def _mean_mean(anchors: _Anchors) -> tuple[float, float]:
    (a_x, b_x, _), (a_y, b_y, _) = anchors.x, anchors.y
    A = float(a_x.mean() / a_y.mean())
    return A, float(b_y.mean() - A * b_x.mean())


def _mean_sigma(anchors: _Anchors) -> tuple[float, float]:
    b_x, b_y = anchors.x[1], anchors.y[1]
    sd_x, sd_y = float(b_x.std()), float(b_y.std())
    if not sd_x > 0 or not sd_y > 0:
        raise ValueError(
            "mean-sigma needs anchors of different difficulty: the sd of b is 0 on "
            f"form {'X' if not sd_x > 0 else 'Y'}"
        )
    A = sd_y / sd_x
    return A, float(b_y.mean() - A * b_x.mean())


def _grid(grid: Grid | None, name: str) -> tuple[np.ndarray, np.ndarray]:
    if grid is None:
        return THETA_GRID, GRID_WEIGHTS
    points, weights = (np.asarray(v, dtype=float).reshape(-1) for v in grid)
    if points.size == 0 or points.shape != weights.shape:
        raise ValueError(f"{name}: need as many weights as theta points (at least one)")
    if not (np.all(np.isfinite(points)) and np.all(np.isfinite(weights))):
        raise ValueError(f"{name}: theta points and weights must be finite")
    if np.any(weights < 0) or not weights.sum() > 0:
        raise ValueError(f"{name}: weights must be non-negative, not all 0")
    return points, weights


def _to_y(
    theta: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray, A: float, B: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return P, dP/dA, dP/dB (points x items) for X's items put on Y's scale.

    z = (a / A)(theta - A b - B): dz/dA = -a (theta - B) / A^2, dz/dB = -a / A.
    """
    theta = theta[:, None]
    s = special.expit((a / A) * (theta - A * b - B))
    slope = (1 - c) * s * (1 - s)
    return c + (1 - c) * s, slope * (-a * (theta - B) / A**2), slope * (-a / A)


def _to_x(
    theta: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray, A: float, B: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return P, dP/dA, dP/dB (points x items) for Y's items put on X's scale.

    a A and (b - B) / A: z = a (A theta + B - b), dz/dA = a theta, dz/dB = a.
    """
    theta = theta[:, None]
    s = special.expit(a * (A * theta + B - b))
    slope = (1 - c) * s * (1 - s)
    return c + (1 - c) * s, slope * a * theta, slope * a


def _direction(
    method: str,
    grid: tuple[np.ndarray, np.ndarray],
    fixed: tuple[np.ndarray, np.ndarray, np.ndarray],
    moved: tuple[np.ndarray, np.ndarray, np.ndarray],
    curves: Any,
) -> Any:
    """Return residuals-and-Jacobian of one direction of the criterion as f(A, B).

    Residuals are sqrt(w_k) (P_fixed - P_moved) per point and item (Haebara) or per
    point, summed over items (Stocking-Lord).
    """
    points, weights = grid
    a, b, c = fixed
    target = c + (1 - c) * special.expit(a * (points[:, None] - b))
    root_w = np.sqrt(weights)[:, None]
    is_haebara = method == "haebara"
    if not is_haebara:
        target = target.sum(axis=1, keepdims=True)

    def evaluate(A: float, B: float) -> tuple[np.ndarray, np.ndarray]:
        p, d_a, d_b = curves(points, *moved, A, B)
        if not is_haebara:
            p, d_a, d_b = (m.sum(axis=1, keepdims=True) for m in (p, d_a, d_b))
        residual = (root_w * (target - p)).ravel()
        jacobian = np.column_stack([(-root_w * d_a).ravel(), (-root_w * d_b).ravel()])
        return residual, jacobian

    return evaluate


def _characteristic_curve(
    anchors: _Anchors,
    method: str,
    grid: tuple[np.ndarray, np.ndarray],
    from_grid: tuple[np.ndarray, np.ndarray] | None,
) -> tuple[float, float, float]:
    """Minimise the Haebara or Stocking-Lord criterion from the mean-sigma solution."""
    parts = [_direction(method, grid, anchors.y, anchors.x, _to_y)]
    if from_grid is not None:
        parts.append(_direction(method, from_grid, anchors.x, anchors.y, _to_x))

    def residuals(vector: np.ndarray) -> np.ndarray:
        return np.concatenate([part(vector[0], vector[1])[0] for part in parts])

    def jacobian(vector: np.ndarray) -> np.ndarray:
        return np.vstack([part(vector[0], vector[1])[1] for part in parts])

    try:
        start = np.array(_mean_sigma(anchors))
    except ValueError:
        start = np.array(_mean_mean(anchors))
    start[0] = max(start[0], 2 * SLOPE_FLOOR)
    fit = optimize.least_squares(
        residuals,
        start,
        jac=jacobian,
        bounds=([SLOPE_FLOOR, -np.inf], [np.inf, np.inf]),
        method="trf",
        xtol=1e-14,
        ftol=1e-14,
        gtol=1e-14,
        max_nfev=1000,
    )
    if fit.status <= 0 or not np.all(np.isfinite(fit.x)):
        raise ValueError(f"{method} linking did not converge: {fit.message}")
    return float(fit.x[0]), float(fit.x[1]), float(2 * fit.cost)
