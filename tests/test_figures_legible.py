"""Every figure reads at column width, checked on each figure module's real output (synthetic
inputs with recorded divergences, tests/figure_world.py) from the drawn artists' extents: no
legend over data or text, no overlapping texts, every text at least style.MIN_FONT_PT at the
printed size, at most style.FULL_WIDTH_IN wide with panels at least style.MIN_PANEL_IN wide,
readable log ticks, a legend entry for every dashed, dotted or dash-dot line and for the
diverged/excluded mark, diverged runs marked, and fits drawn with their interval where a slope is
stated."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pytest
from matplotlib.collections import PolyCollection

import figure_checks as checks
import figure_world

from ntkvae import planning, plot
from ntkvae.figures import style

TOPICS = [figure.topic for figure in planning.FIGURES]
# The figures that draw a run of the synthetic world with a recorded divergence (figure_world's docstring).
MARKS_DIVERGENCE = {"convergence", "laziness", "kernel_constancy", "rate", "krr", "kl_beta", "activations"}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return figure_world.build(tmp_path_factory.mktemp("world"))


@pytest.fixture(scope="module")
def drawn(world, tmp_path_factory):
    """topic -> (figure, renderer), each figure drawn once by its module through `python -m ntkvae.plot`."""
    cache = {}
    out = tmp_path_factory.mktemp("figures")

    def draw(topic):
        if topic not in cache:
            captured = []
            original = style.save
            style.save = lambda fig, pdf, png, dpi: (captured.append(fig), plt.close(fig))
            try:
                assert plot.main(world.argv(topic, out / f"{topic}.pdf")) == 0
            finally:
                style.save = original
            (fig,) = captured
            cache[topic] = fig, checks.renderer_of(fig)
        return cache[topic]

    return draw


@pytest.mark.parametrize("check", checks.ALL, ids=lambda c: c.__name__)
@pytest.mark.parametrize("topic", TOPICS)
def test_figure_is_legible(drawn, topic, check):
    fig, renderer = drawn(topic)
    problems = check(fig, renderer)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("topic", sorted(MARKS_DIVERGENCE))
def test_recorded_divergences_are_marked(drawn, topic):
    fig, _ = drawn(topic)
    assert checks.excluded_marks(fig) >= 1


@pytest.mark.parametrize("topic", ["laziness", "kernel_constancy", "krr", "min_width"])
def test_a_stated_slope_comes_with_its_fit_and_interval(drawn, topic):
    """A panel whose legend states a slope draws the fit and a band for its interval."""
    fig, _ = drawn(topic)
    stated = [ax for ax in fig.axes if ax.get_legend() and any(
        "slope" in t.get_text() for t in [*ax.get_legend().get_texts(), ax.get_legend().get_title()])]
    assert stated, "no panel states a slope"
    for ax in stated:
        assert any(isinstance(c, PolyCollection) and c.get_gid() == style.FIT_BAND_GID
                   for c in ax.collections), ax.get_title()


def test_the_checks_catch_a_legend_on_the_data_and_a_small_font():
    # The checker must be able to fail: a legend in the middle of a line, a 5 pt tick label.
    fig, ax = plt.subplots(figsize=(3.4, 2.5))
    ax.plot([0, 1], [0, 1], "--", label="a dashed line")
    ax.plot([0, 1], [1, 0], ":")
    ax.legend(loc="center")
    ax.tick_params(labelsize=5)
    renderer = checks.renderer_of(fig)
    assert checks.legends_off_data(fig, renderer)
    assert checks.fonts(fig, renderer)
    assert any("':'" in p for p in checks.styles_explained(fig, renderer))
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1))
    ax.lines[1].set_label("dotted")
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1))
    renderer = checks.renderer_of(fig)
    assert not checks.legends_off_data(fig, renderer) and not checks.styles_explained(fig, renderer)
    plt.close(fig)


def test_a_run_above_its_stability_limit_is_drawn_as_outside_the_theory(tmp_path):
    """F10: a run trained above its finite-width stability limit (on_divergence: record, not
    diverged) says so in its label, with the ratio, and uses the outside-assumptions line style;
    one below it does not (the default run's softplus at 3.8x was drawn like erf)."""
    import h5py

    world = figure_world.build(tmp_path / "world")
    argv = world.argv("activations", tmp_path / "f.pdf")
    inputs = argv[argv.index("--inputs") + 1:argv.index("--dataset")]
    tanh = next(p for p in inputs if "act_tanh" in p)
    erf = next(p for p in inputs if "act_erf" in p)
    with h5py.File(tanh, "a") as f:
        f.attrs["lr_over_stability"] = 3.8
    with h5py.File(erf, "a") as f:
        f.attrs["lr_over_stability"] = 0.2
    captured = []
    original = style.save
    style.save = lambda fig, pdf, png, dpi: (captured.append(fig), plt.close(fig))
    try:
        assert plot.main(argv) == 0
    finally:
        style.save = original
    (fig,) = captured
    lines = {line.get_label(): line for ax in fig.axes for line in ax.get_lines()
             if not line.get_label().startswith("_")}
    (unstable,) = [label for label in lines if label.startswith("tanh")]
    assert "3.8x the stability limit" in unstable
    assert lines[unstable].get_linestyle() == style.LINESTYLES["outside assumptions"]
    (stable,) = [label for label in lines if label.startswith("erf")]
    assert "stability" not in stable and lines[stable].get_linestyle() == "-"
    renderer = checks.renderer_of(fig)
    for check in checks.ALL:        # the longer label still reads at column width
        assert not check(fig, renderer), check.__name__
