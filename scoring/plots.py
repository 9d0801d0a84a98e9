"""Psychometric plots: item characteristic curves, test information, score distribution,
and item exposure rates of an adaptive-test simulation.

Pure rendering: arguments in, PNG or SVG bytes out. No Flask, no database, no clock, no
global state. Matplotlib is imported inside the functions (importing this module does
not import it) and is used through its object API only: each figure gets its own Agg
canvas (``FigureCanvasAgg``), so nothing calls ``matplotlib.use`` or ``pyplot``, no
window is ever opened, no rcParams are changed and figures are not registered anywhere
(they are freed with their last reference; safe to call from worker threads).

Curves are drawn over theta in [-4, 4] (``THETA_RANGE``) on the N(0, 1) scale of
``scoring.irt``, with its logistic model (D = 1)::

    P(theta) = c + (1 - c) / (1 + exp(-a (theta - b)))
    I(theta) = sum_j I_j(theta)             (Birnbaum 1968; ``irt.test_information``)
    SE(theta) = 1 / sqrt(I(theta))          (conditional standard error of measurement)

The numbers behind the information plot come from ``information_table``, a pure helper
the tests check directly. Figures are ``FIGURE_SIZE`` inches at ``DPI`` dots per inch,
so a PNG is 700 x 450 pixels. Text uses matplotlib's default font, DejaVu Sans (Latin,
Greek, Cyrillic; no CJK glyphs, so item ids should be ASCII).
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from scoring.irt import CalibrationResult, ItemParameters, probability, test_information

if TYPE_CHECKING:
    from matplotlib.figure import Figure

ImageFormat = Literal["png", "svg"]
IMAGE_FORMATS: tuple[str, ...] = ("png", "svg")
THETA_RANGE = (-4.0, 4.0)
THETA_POINTS = 161  # a step of 0.05 over THETA_RANGE
FIGURE_SIZE = (7.0, 4.5)  # inches
DPI = 100
MAX_LEGEND_ENTRIES = 20  # more item curves than this are drawn without a legend
MAX_UNIT_BINS = 60  # integer totals spanning more score points than this get "auto" bins
SE_AXIS_FACTOR = 4.0  # the SE axis shows up to this multiple of the smallest SE

ICC_FILENAME = "item_characteristic_curves.png"
INFORMATION_FILENAME = "test_information.png"
DISTRIBUTION_FILENAME = "score_distribution.png"
EXPOSURE_FILENAME = "exposure_rates.png"

Params = CalibrationResult | Sequence[ItemParameters]


@dataclass(frozen=True)
class InformationTable:
    """Test information and conditional standard error at each theta."""

    theta: np.ndarray
    information: np.ndarray
    standard_error: np.ndarray

    @property
    def peak_theta(self) -> float:
        """Return the theta (among those tabulated) where the information is highest."""
        return float(self.theta[int(np.argmax(self.information))])


def information_table(params: Params, thetas: Iterable[float] | None = None) -> InformationTable:
    """Tabulate test information and SE = 1 / sqrt(information) (inf where it is 0).

    ``thetas`` defaults to ``THETA_POINTS`` evenly spaced points over ``THETA_RANGE``.
    """
    items = _items(params)
    theta = _theta_grid() if thetas is None else np.asarray(list(thetas), dtype=float)
    if theta.ndim != 1 or theta.size == 0 or not np.all(np.isfinite(theta)):
        raise ValueError("thetas must be a non-empty sequence of finite numbers")
    information = test_information(theta, items)
    with np.errstate(divide="ignore"):
        standard_error = np.where(information > 0, 1 / np.sqrt(information), np.inf)
    for array in (theta, information, standard_error):
        array.setflags(write=False)
    return InformationTable(theta, information, standard_error)


# --------------------------------------------------------------------------- figures


def item_characteristic_figure(params: Params, item_ids: Sequence[str] | None = None) -> Figure:
    """Build (without rendering) one P(theta) curve per item, labelled with its id.

    ``item_ids`` picks and orders the items to draw (default: all, in calibration
    order); an id that is not among the parameters raises ``ValueError``. Each line's
    label is its item id and its SVG element id (``gid``) is ``icc-<item id>``.
    """
    items = _select(_items(params), item_ids)
    theta = _theta_grid()
    p = probability(theta, items)
    figure, axes = _new_figure()
    lines = []
    for j, item in enumerate(items):
        (line,) = axes.plot(theta, p[:, j], label=item.item_id, linewidth=1.5)
        line.set_gid(f"icc-{item.item_id}")
        lines.append(line)
    axes.set_xlim(*THETA_RANGE)
    axes.set_ylim(0.0, 1.0)
    axes.set_xlabel("Ability θ")
    axes.set_ylabel("P(correct | θ)")
    axes.set_title(
        "Item characteristic curves"
        + ("" if len(items) <= MAX_LEGEND_ENTRIES else f" ({len(items)} items)")
    )
    axes.grid(alpha=0.3)
    if len(items) <= MAX_LEGEND_ENTRIES:
        # handles and labels passed explicitly, so an id starting with "_" is still shown
        figure.legend(
            lines,
            [_plain_text(item.item_id) for item in items],
            loc="outside right upper",
            fontsize="small",
            title="Item",
        )
    return figure


def test_information_figure(params: Params) -> Figure:
    """Build (without rendering) test information with the SE on a second y axis."""
    table = information_table(params)
    figure, axes = _new_figure()
    (information_line,) = axes.plot(
        table.theta, table.information, color="tab:blue", linewidth=2.0, label="Information"
    )
    information_line.set_gid("test-information")
    axes.set_xlim(*THETA_RANGE)
    axes.set_ylim(0.0, float(np.max(table.information)) * 1.1)
    axes.set_xlabel("Ability θ")
    axes.set_ylabel("Test information I(θ)", color="tab:blue")
    axes.grid(alpha=0.3)
    se_axes = axes.twinx()
    (se_line,) = se_axes.plot(
        table.theta,
        table.standard_error,
        color="tab:orange",
        linestyle="--",
        linewidth=1.5,
        label="Standard error",
    )
    se_line.set_gid("standard-error")
    finite = table.standard_error[np.isfinite(table.standard_error)]
    top = min(float(np.max(finite)), SE_AXIS_FACTOR * float(np.min(finite)))
    se_axes.set_ylim(0.0, top * 1.05)
    se_axes.set_ylabel("Standard error 1/√I(θ)", color="tab:orange")
    axes.set_title(f"Test information ({len(_items(params))} items)")
    axes.legend([information_line, se_line], ["Information", "Standard error"], loc="upper left")
    return figure


test_information_figure.__test__ = False  # type: ignore[attr-defined]  # not a pytest test


def score_distribution_figure(totals: Iterable[float], pass_mark: float | None = None) -> Figure:
    """Build (without rendering) a histogram of total scores, with a pass-mark line.

    NaN totals (persons who saw no item, see ``analysis.prorated_totals``) are left
    out; infinite totals raise ``ValueError``. Whole-number totals get one bar per
    score point (up to ``MAX_UNIT_BINS`` points), others numpy's "auto" bins.
    """
    values = _totals(totals)
    if pass_mark is not None and not math.isfinite(pass_mark):
        raise ValueError(f"pass_mark must be a finite number, got {pass_mark!r}")
    figure, axes = _new_figure()
    _counts, _edges, bars = axes.hist(
        values, bins=_bin_edges(values), color="tab:blue", edgecolor="white", label="Candidates"
    )
    for k, bar in enumerate(bars):
        bar.set_gid(f"score-bar-{k}")
    if pass_mark is not None:
        line = axes.axvline(
            pass_mark, color="tab:red", linestyle="--", linewidth=2.0, label="Pass mark"
        )
        line.set_gid("pass-mark")
        axes.legend([line], [f"Pass mark {_plain_text(_number(pass_mark))}"], loc="upper left")
    axes.set_xlabel("Total score")
    axes.set_ylabel("Candidates")
    axes.set_title(f"Score distribution (n = {values.size})")
    axes.yaxis.get_major_locator().set_params(integer=True)
    if _is_whole(values):
        axes.xaxis.get_major_locator().set_params(integer=True)
    axes.grid(axis="y", alpha=0.3)
    return figure


def exposure_figure(
    difficulty: Sequence[float], rates: Sequence[float], limit: float | None = None
) -> Figure:
    """Build (without rendering) each item's exposure rate against its difficulty b.

    The rates come from an adaptive-test simulation (``scoring.cat.simulate``); a
    ``limit`` (the target maximum rate, e.g. Sympson-Hetter's r_max) is drawn as a line.
    """
    b = np.asarray(difficulty, dtype=float).reshape(-1)
    rate = np.asarray(rates, dtype=float).reshape(-1)
    if b.size == 0 or b.size != rate.size or not np.all(np.isfinite(b) & np.isfinite(rate)):
        raise ValueError("need one finite exposure rate per finite item difficulty")
    figure, axes = _new_figure()
    points = axes.scatter(b, rate, s=12, color="tab:blue", alpha=0.7, label="Items")
    points.set_gid("exposure-rates")
    handles, labels = [points], [f"Items ({b.size})"]
    if limit is not None:
        line = axes.axhline(limit, color="tab:red", linestyle="--", linewidth=1.5)
        line.set_gid("exposure-limit")
        handles.append(line)
        labels.append(f"Target maximum {_number(limit)}")
    axes.set_ylim(0.0, max(1.0, float(rate.max())) * 1.02)
    axes.set_xlabel("Item difficulty b")
    axes.set_ylabel("Exposure rate (share of tests)")
    axes.set_title(f"Item exposure (max {float(rate.max()):.2f}, unused {int((rate == 0).sum())})")
    axes.grid(alpha=0.3)
    axes.legend(handles, labels, loc="upper left")
    return figure


# --------------------------------------------------------------------------- bytes


def item_characteristic_curves(
    params: Params, item_ids: Sequence[str] | None = None, format: ImageFormat = "png"
) -> bytes:
    """Render one item characteristic curve per item as PNG or SVG bytes."""
    _check_format(format)
    return render(item_characteristic_figure(params, item_ids), format)


def test_information_curve(params: Params, format: ImageFormat = "png") -> bytes:
    """Render the test information and its conditional SE as PNG or SVG bytes."""
    _check_format(format)
    return render(test_information_figure(params), format)


test_information_curve.__test__ = False  # type: ignore[attr-defined]  # not a pytest test


def score_distribution(
    totals: Iterable[float], pass_mark: float | None = None, format: ImageFormat = "png"
) -> bytes:
    """Render a histogram of total scores (optional pass-mark line) as PNG or SVG bytes."""
    _check_format(format)
    return render(score_distribution_figure(totals, pass_mark), format)


def exposure_rates(
    difficulty: Sequence[float],
    rates: Sequence[float],
    limit: float | None = None,
    format: ImageFormat = "png",
) -> bytes:
    """Render item exposure rates against difficulty as PNG or SVG bytes."""
    _check_format(format)
    return render(exposure_figure(difficulty, rates, limit), format)


def write_analysis_plots(
    folder: str | Path,
    params: Params | None = None,
    totals: Iterable[float] | None = None,
    pass_mark: float | None = None,
) -> list[Path]:
    """Write the plots the arguments allow as PNG files in ``folder``; return their paths.

    Item parameters give ``ICC_FILENAME`` and ``INFORMATION_FILENAME``; totals give
    ``DISTRIBUTION_FILENAME``. The folder is created when there is something to write;
    existing files of those names are replaced. A pass mark without totals raises ``ValueError``.
    """
    if pass_mark is not None and totals is None:
        raise ValueError("a pass mark needs totals to draw the score distribution on")
    images: list[tuple[str, bytes]] = []
    if params is not None:
        images.append((ICC_FILENAME, item_characteristic_curves(params)))
        images.append((INFORMATION_FILENAME, test_information_curve(params)))
    if totals is not None:
        images.append((DISTRIBUTION_FILENAME, score_distribution(totals, pass_mark)))
    target = Path(folder)
    if images:
        target.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, data in images:
        path = target / name
        path.write_bytes(data)
        paths.append(path)
    return paths


def render(figure: Figure, format: ImageFormat = "png") -> bytes:
    """Return ``figure`` as PNG or SVG bytes (``DPI`` dots per inch; SVG without a date).

    The whole figure is saved whatever a user's ``savefig.bbox`` rcParam says, so a PNG
    is always ``FIGURE_SIZE`` x ``DPI`` pixels.
    """
    _check_format(format)
    buffer = io.BytesIO()
    metadata: dict[str, Any] = {"Date": None} if format == "svg" else {}
    figure.savefig(
        buffer, format=format, dpi=DPI, metadata=metadata, bbox_inches=figure.bbox_inches
    )
    return buffer.getvalue()


# --------------------------------------------------------------------------- helpers


def _new_figure() -> tuple[Figure, Any]:
    """Create a figure on its own Agg canvas (no pyplot, no global backend) and axes."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=FIGURE_SIZE, dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure, figure.add_subplot()


def _check_format(format: str) -> None:
    if format not in IMAGE_FORMATS:
        raise ValueError(f"unknown format {format!r}; expected one of {', '.join(IMAGE_FORMATS)}")


def _theta_grid() -> np.ndarray:
    return np.linspace(*THETA_RANGE, THETA_POINTS)


def _items(params: Params) -> tuple[ItemParameters, ...]:
    items = params.items if isinstance(params, CalibrationResult) else tuple(params)
    if not items:
        raise ValueError("no item parameters to plot")
    return items


def _select(
    items: tuple[ItemParameters, ...], item_ids: Sequence[str] | None
) -> tuple[ItemParameters, ...]:
    if item_ids is None:
        return items
    if isinstance(item_ids, str):
        raise TypeError("item_ids must be a sequence of ids, not one string")
    by_id = {item.item_id: item for item in items}
    unknown = [item_id for item_id in item_ids if item_id not in by_id]
    if unknown:
        raise ValueError(f"no parameters for item(s): {', '.join(map(str, unknown))}")
    if not item_ids:
        raise ValueError("item_ids is empty: nothing to plot")
    return tuple(by_id[item_id] for item_id in item_ids)


def _totals(totals: Iterable[float]) -> np.ndarray:
    values = np.asarray(list(totals), dtype=float).reshape(-1)
    values = values[~np.isnan(values)]
    if values.size == 0:
        raise ValueError("no total scores to plot")
    if not np.all(np.isfinite(values)):
        raise ValueError("total scores must be finite")
    return values


def _bin_edges(values: np.ndarray) -> np.ndarray:
    """One bar per score point for whole-number totals, else numpy's "auto" bins."""
    low, high = float(values.min()), float(values.max())
    if _is_whole(values) and high - low <= MAX_UNIT_BINS:
        return np.arange(round(low) - 0.5, round(high) + 1.0, 1.0)
    if low == high:
        return np.array([low - 0.5, high + 0.5])
    return np.histogram_bin_edges(values, bins="auto")


def _is_whole(values: np.ndarray) -> bool:
    return bool(np.allclose(values, np.round(values), rtol=0.0, atol=1e-9))


def _number(value: float) -> str:
    return f"{value:g}"


def _plain_text(text: str) -> str:
    """Escape "$" so matplotlib shows the text as typed, never as mathtext."""
    return text.replace("$", r"\$")
