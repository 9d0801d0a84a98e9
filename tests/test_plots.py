"""Psychometric plots (scoring.plots): image bytes, plotted numbers, files written."""

from __future__ import annotations

import io
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from xml.etree import ElementTree

import numpy as np
import pytest
from PIL import Image

from scoring import plots
from scoring.irt import CalibrationResult, ItemParameters, probability

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SVG_NS = "{http://www.w3.org/2000/svg}"
PNG_SIZE = (round(plots.FIGURE_SIZE[0] * plots.DPI), round(plots.FIGURE_SIZE[1] * plots.DPI))


@pytest.fixture
def make_params():
    """Return a factory of 2PL item parameters: one item per difficulty."""

    def make(*difficulties: float, a: float = 1.5, c: float = 0.0) -> tuple[ItemParameters, ...]:
        return tuple(
            ItemParameters(f"Q{j + 1}", a, b, c) for j, b in enumerate(difficulties or (-1, 0, 1))
        )

    return make


def png_size(data: bytes) -> tuple[int, int]:
    assert data.startswith(PNG_SIGNATURE)
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "PNG"
        return image.size


def svg_root(data: bytes) -> ElementTree.Element:
    assert b"<svg" in data
    root = ElementTree.fromstring(data)  # noqa: S314  # our own output, not untrusted input
    assert root.tag == f"{SVG_NS}svg"
    return root


def svg_ids(root: ElementTree.Element) -> set[str]:
    return {element.get("id") for element in root.iter() if element.get("id")}


# --------------------------------------------------------------------------- formats


def test_icc_png_is_a_png_of_the_figure_size(make_params):
    """The ICC plot renders as a PNG of FIGURE_SIZE x DPI pixels."""
    assert png_size(plots.item_characteristic_curves(make_params())) == PNG_SIZE


def test_icc_svg_is_parseable_svg(make_params):
    """The ICC plot renders as parseable SVG."""
    svg_root(plots.item_characteristic_curves(make_params(), format="svg"))


def test_information_png_is_a_png_of_the_figure_size(make_params):
    """The test information plot renders as a PNG of FIGURE_SIZE x DPI pixels."""
    assert png_size(plots.test_information_curve(make_params())) == PNG_SIZE


def test_information_svg_is_parseable_svg(make_params):
    """The test information plot renders as parseable SVG with both curves."""
    root = svg_root(plots.test_information_curve(make_params(), format="svg"))
    assert {"test-information", "standard-error"} <= svg_ids(root)


def test_distribution_png_is_a_png_of_the_figure_size():
    """The score distribution renders as a PNG of FIGURE_SIZE x DPI pixels."""
    assert png_size(plots.score_distribution([3, 5, 5, 6, 8], pass_mark=5)) == PNG_SIZE


def test_distribution_svg_is_parseable_svg():
    """The score distribution renders as parseable SVG with its bars and pass-mark line."""
    root = svg_root(plots.score_distribution([3, 5, 5, 6, 8], pass_mark=5, format="svg"))
    ids = svg_ids(root)
    assert "pass-mark" in ids
    assert {i for i in ids if i.startswith("score-bar-")} == {f"score-bar-{k}" for k in range(6)}


def test_unknown_format_is_refused(make_params):
    """A format other than png or svg raises ValueError."""
    with pytest.raises(ValueError, match="unknown format"):
        plots.item_characteristic_curves(make_params(), format="jpg")


def test_svg_has_no_date():
    """SVG output carries no creation date, so the same plot gives the same metadata."""
    assert b"<dc:date>" not in plots.score_distribution([1, 2, 2], format="svg")


# --------------------------------------------------------------------------- ICC


def test_icc_has_one_labelled_line_per_item(make_params):
    """The ICC figure has one line per item, labelled with the item id."""
    figure = plots.item_characteristic_figure(make_params(-1, 0, 1))
    (axes,) = figure.axes
    assert [line.get_label() for line in axes.get_lines()] == ["Q1", "Q2", "Q3"]
    (legend,) = figure.legends
    assert [text.get_text() for text in legend.get_texts()] == ["Q1", "Q2", "Q3"]


def test_icc_svg_has_one_path_per_item(make_params):
    """The ICC SVG holds one group with one path per item, with the item's id."""
    root = svg_root(plots.item_characteristic_curves(make_params(-1, 0, 1), format="svg"))
    groups = [g for g in root.iter(f"{SVG_NS}g") if (g.get("id") or "").startswith("icc-")]
    assert [g.get("id") for g in groups] == ["icc-Q1", "icc-Q2", "icc-Q3"]
    assert all(len(list(g.iter(f"{SVG_NS}path"))) == 1 for g in groups)


def test_icc_of_many_items_has_no_legend():
    """More than MAX_LEGEND_ENTRIES item curves are drawn without a legend."""
    n = plots.MAX_LEGEND_ENTRIES + 1
    params = tuple(ItemParameters(f"I{j}", 1.0, b) for j, b in enumerate(np.linspace(-2, 2, n)))
    figure = plots.item_characteristic_figure(params)
    assert len(figure.axes[0].get_lines()) == n
    assert figure.legends == []
    assert f"({n} items)" in figure.axes[0].get_title()


def test_icc_plots_the_model_probabilities(make_params):
    """Each ICC line is P(theta) of its item over THETA_RANGE."""
    params = make_params(-1, 0.5, c=0.2)
    (axes,) = plots.item_characteristic_figure(params).axes
    for j, line in enumerate(axes.get_lines()):
        theta = np.asarray(line.get_xdata())
        assert theta[0] == plots.THETA_RANGE[0] and theta[-1] == plots.THETA_RANGE[1]
        np.testing.assert_allclose(line.get_ydata(), probability(theta, params)[:, j])


def test_icc_item_ids_pick_and_order_items(make_params):
    """item_ids draws only the named items, in the order given."""
    figure = plots.item_characteristic_figure(make_params(-1, 0, 1), item_ids=["Q3", "Q1"])
    assert [line.get_label() for line in figure.axes[0].get_lines()] == ["Q3", "Q1"]


def test_icc_unknown_item_id_is_refused(make_params):
    """An item id without parameters raises ValueError naming it."""
    with pytest.raises(ValueError, match="Q9"):
        plots.item_characteristic_curves(make_params(), item_ids=["Q1", "Q9"])


def test_icc_accepts_a_calibration_result(make_params):
    """A CalibrationResult is plotted like its tuple of item parameters."""
    result = CalibrationResult("2pl", make_params(-1, 1), -10.0, 5, True)
    figure = plots.item_characteristic_figure(result)
    assert len(figure.axes[0].get_lines()) == 2


def test_dollar_in_an_item_id_is_shown_as_typed():
    """An item id containing "$" is not parsed as mathtext and still renders."""
    params = (ItemParameters("cost$1", 1.0, 0.0), ItemParameters("cost$2", 1.0, 1.0))
    assert png_size(plots.item_characteristic_curves(params)) == PNG_SIZE


def test_no_parameters_are_refused():
    """Plotting an empty set of item parameters raises ValueError."""
    with pytest.raises(ValueError, match="no item parameters"):
        plots.test_information_curve(())


# --------------------------------------------------------------------------- information


def test_information_peaks_at_a_2pl_items_difficulty(make_params):
    """A single 2PL item's information is highest at its difficulty b."""
    table = plots.information_table(make_params(1.2), np.linspace(-4, 4, 801))
    assert table.peak_theta == pytest.approx(1.2, abs=0.01)


def test_information_peaks_at_the_centre_of_symmetric_difficulties(make_params):
    """Equal-slope items with difficulties -1, 0, 1 give information highest at theta 0."""
    table = plots.information_table(make_params(-1, 0, 1))
    assert table.peak_theta == pytest.approx(0.0, abs=1e-9)
    assert table.information[np.argmin(np.abs(table.theta))] > table.information[0] * 10


def test_information_peaks_above_b_for_a_3pl_item():
    """A 3PL item's information peaks at b + ln((1 + sqrt(1 + 8c)) / 2) / a (Birnbaum 1968)."""
    a, b, c = 1.2, 0.5, 0.25
    table = plots.information_table((ItemParameters("Q1", a, b, c),), np.linspace(-4, 4, 8001))
    expected = b + math.log((1 + math.sqrt(1 + 8 * c)) / 2) / a
    assert table.peak_theta == pytest.approx(expected, abs=1e-3)


def test_information_of_one_rasch_item_at_b_is_a_squared_over_four():
    """At theta = b a c = 0 item's information is a^2 / 4 and the SE 2 / a."""
    table = plots.information_table((ItemParameters("Q1", 0.8, -0.3),), [-0.3])
    assert table.information[0] == pytest.approx(0.16)
    assert table.standard_error[0] == pytest.approx(2.5)


def test_standard_error_is_one_over_root_information(make_params):
    """The tabulated SE is 1 / sqrt(test information) at every theta."""
    table = plots.information_table(make_params(-2, 0.5, 1.5))
    np.testing.assert_allclose(table.standard_error, 1 / np.sqrt(table.information))


def test_information_figure_plots_the_table(make_params):
    """The information plot draws exactly the numbers of information_table."""
    params = make_params(-1, 0, 2)
    table = plots.information_table(params)
    figure = plots.test_information_figure(params)
    information_axes, se_axes = figure.axes
    (information_line,) = information_axes.get_lines()
    (se_line,) = se_axes.get_lines()
    np.testing.assert_array_equal(information_line.get_xdata(), table.theta)
    np.testing.assert_array_equal(information_line.get_ydata(), table.information)
    np.testing.assert_array_equal(se_line.get_ydata(), table.standard_error)


# --------------------------------------------------------------------------- distribution


def test_whole_number_totals_get_one_bar_per_score_point():
    """Whole-number totals are counted in one bar per score point from min to max."""
    figure = plots.score_distribution_figure([0, 1, 1, 2, 2, 2, 4])
    heights = [patch.get_height() for patch in figure.axes[0].patches]
    assert heights == [1, 2, 3, 0, 1]


def test_nan_totals_are_left_out():
    """NaN totals (no item presented) are not counted."""
    figure = plots.score_distribution_figure([1.0, math.nan, 2.0])
    assert sum(patch.get_height() for patch in figure.axes[0].patches) == 2


def test_fractional_totals_are_all_counted():
    """Prorated (fractional) totals are binned automatically and every one is counted."""
    totals = np.random.default_rng(7).normal(20, 4, size=300)
    figure = plots.score_distribution_figure(totals)
    assert sum(patch.get_height() for patch in figure.axes[0].patches) == 300


def test_pass_mark_is_a_vertical_line_at_the_mark():
    """The pass mark is drawn as a vertical line at its score, named in the legend."""
    figure = plots.score_distribution_figure([3, 5, 6], pass_mark=4.5)
    (line,) = figure.axes[0].get_lines()
    assert list(line.get_xdata()) == [4.5, 4.5]
    assert [t.get_text() for t in figure.axes[0].get_legend().get_texts()] == ["Pass mark 4.5"]


def test_no_totals_are_refused():
    """A distribution without any (non-NaN) total raises ValueError."""
    with pytest.raises(ValueError, match="no total scores"):
        plots.score_distribution([math.nan])


# --------------------------------------------------------------------------- files


def test_writing_all_plots_creates_three_png_files(tmp_path, make_params):
    """With parameters and totals, three PNG files are written and their paths returned."""
    folder = tmp_path / "report" / "plots"
    paths = plots.write_analysis_plots(folder, make_params(), [1, 2, 2, 3], pass_mark=2)
    assert [p.name for p in paths] == [
        plots.ICC_FILENAME,
        plots.INFORMATION_FILENAME,
        plots.DISTRIBUTION_FILENAME,
    ]
    assert all(p.parent == folder and png_size(p.read_bytes()) == PNG_SIZE for p in paths)


def test_writing_only_totals_creates_only_the_distribution(tmp_path):
    """Without item parameters only the score distribution is written."""
    paths = plots.write_analysis_plots(tmp_path, totals=[1, 2, 3])
    assert paths == [tmp_path / plots.DISTRIBUTION_FILENAME]
    assert sorted(os.listdir(tmp_path)) == [plots.DISTRIBUTION_FILENAME]


def test_writing_nothing_applicable_writes_nothing(tmp_path):
    """Without parameters or totals no file is written and no path returned."""
    assert plots.write_analysis_plots(tmp_path / "empty") == []
    assert not (tmp_path / "empty").exists()


def test_pass_mark_without_totals_is_refused(tmp_path, make_params):
    """A pass mark without totals raises ValueError before writing anything."""
    with pytest.raises(ValueError, match="pass mark"):
        plots.write_analysis_plots(tmp_path, make_params(), pass_mark=10)
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- hygiene


def test_import_does_not_import_matplotlib_or_select_a_backend(tmp_path):
    """Importing scoring.plots loads no matplotlib; rendering leaves pyplot unloaded."""
    code = textwrap.dedent(
        """
        import sys
        import scoring.plots as plots
        assert "matplotlib" not in sys.modules, "imported at import time"
        plots.score_distribution([1, 2, 2])
        assert "matplotlib.pyplot" not in sys.modules, "pyplot used"
        """
    )
    run_fresh_python(code, tmp_path)


def test_first_render_in_a_fresh_matplotlib_home_emits_no_warning(tmp_path):
    """A first render with an empty matplotlib config/cache dir emits no Python warning."""
    code = textwrap.dedent(
        """
        import scoring.plots as plots
        from scoring.irt import ItemParameters
        params = (ItemParameters("Q1", 1.0, 0.0), ItemParameters("Q2", 1.0, 1.0))
        for format in ("png", "svg"):
            plots.item_characteristic_curves(params, format=format)
            plots.test_information_curve(params, format=format)
            plots.score_distribution([1, 2, 2], pass_mark=2, format=format)
        """
    )
    run_fresh_python(code, tmp_path)  # warnings are errors there: any one fails the run


def run_fresh_python(code: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """Run code in a new interpreter with warnings as errors and an empty MPLCONFIGDIR."""
    config = tmp_path / "mplconfig"
    config.mkdir()
    env = {**os.environ, "MPLCONFIGDIR": str(config), "PYTHONWARNINGS": "error"}
    root = Path(__file__).resolve().parents[1]
    result = subprocess.run(
        [sys.executable, "-W", "error", "-c", code],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result
