"""Shared look of the figures: sizes for a paper column, colours by width, mean and spread.

Legibility rules every figure keeps (tests/test_figures_legible.py checks them on each module's
real output, from the drawn artists' extents):

- drawn at the size it is printed: at most FULL_WIDTH_IN wide (both columns of a two-column
  paper; a single-panel figure takes COLUMN_WIDTH_IN), at most two panels side by side, so that
  every plotting panel is at least MIN_PANEL_IN wide, as wide as a panel in one column;
- every text at least MIN_FONT_PT at that size (7 pt: the smallest size journals print);
- legends outside the data (below or to the right of their panel: `legend_below`,
  `legend_right`), never over a line, marker, band or image, nor over a text;
- one meaning per line style (LINESTYLES), each with a legend entry; measured values solid with
  markers, fits thin solid with the band of their interval (`fit_line`);
- diverged or excluded points marked where they would be (`mark_excluded`), with a legend entry;
- log axes with plain-number ticks (`log_ticks`).
"""

from __future__ import annotations

import os
import pathlib

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ..results import measures  # noqa: E402
from ..results.runs import divergence_note  # noqa: E402

COLUMN_WIDTH_IN = 3.4   # one column of a two-column paper
FULL_WIDTH_IN = 7.0     # both columns
MIN_PANEL_IN = 2.0      # the narrowest plotting panel: two side by side at FULL_WIDTH_IN with their labels (not three)
MIN_FONT_PT = 7.0       # the smallest text, at the printed size

# One meaning per line style (with a legend entry wherever it is drawn).
LINESTYLES = {
    "measured": "-",             # a measurement (markers: its points; band: min-max over seeds)
    "prediction": "--",          # what the theory predicts (linearized trajectory, Theta_inf, a slope)
    "threshold": ":",            # a bound or a tolerance the measurement is held to
    "outside assumptions": "-.",  # a run outside the theorem's assumptions (Wsigma trained, relu)
}

RC = {
    "font.size": 8,
    "axes.titlesize": 8,
    "axes.labelsize": 8,
    "legend.fontsize": 7,
    "legend.title_fontsize": 7,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "lines.linewidth": 1.2,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "savefig.bbox": "tight",
    "pdf.fonttype": 42,
}


def apply() -> None:
    plt.rcParams.update(RC)


def width_colors(widths) -> dict[int, tuple]:
    """One colour per width, light (narrow) to dark (wide), on a perceptual map."""
    widths = sorted(widths)
    cmap = plt.get_cmap("viridis")
    return {w: cmap(0.85 - 0.75 * i / max(len(widths) - 1, 1)) for i, w in enumerate(widths)}


def mean_and_band(ax, x, ys, color, label, *, log=False, **kw):
    """Plot the mean over seeds (rows of ys) and a band of min..max across seeds."""
    ys = np.asarray(ys, dtype=float)
    if log:
        centre = np.exp(np.mean(np.log(np.maximum(ys, 1e-300)), axis=0))  # geometric mean for log axes
    else:
        centre = ys.mean(axis=0)
    (line,) = ax.plot(x, centre, color=color, label=label, **kw)
    if ys.shape[0] > 1:
        ax.fill_between(x, ys.min(axis=0), ys.max(axis=0), color=color, alpha=0.2, linewidth=0)
    return line


def spread(values, centre) -> np.ndarray:
    """Error-bar lengths (2, k) from `centre` down to the minimum and up to the maximum over seeds (rows)."""
    values = np.asarray(values, dtype=float)
    return np.stack([np.maximum(centre - np.nanmin(values, axis=0), 0), np.maximum(np.nanmax(values, axis=0) - centre, 0)])


def bars(values_per_width, *, log: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Centre (geometric mean for log axes) and error-bar lengths (2, k) over the seeds at each of
    k widths, given one array of per-seed values per width: widths may keep different numbers of
    seeds, since the seeds that diverged are left out."""
    centre, low, high = measures.per_width(values_per_width, log=log)
    return centre, np.stack([np.maximum(centre - low, 0), np.maximum(high - centre, 0)])


def divergence_footnote(fig, runs) -> None:
    """Name, below the figure, the seeds left out because their training diverged."""
    import textwrap

    note = divergence_note(runs)
    if note:
        chars = int(fig.get_figwidth() * 72 / (0.55 * MIN_FONT_PT))   # about one character per 0.55 em
        fig.text(0.01, 0.0, textwrap.fill(note, chars), fontsize=MIN_FONT_PT, color="tab:red", ha="left", va="top")


def nothing_to_show(ax, text: str) -> None:
    """An empty panel that says why (e.g. every seed diverged, or nothing was recorded)."""
    import textwrap

    ax.text(0.5, 0.5, textwrap.fill(text, 36), transform=ax.transAxes, ha="center", va="center", fontsize=MIN_FONT_PT,
            color="tab:red")
    ax.set_xticks([])
    ax.set_yticks([])


THEORY = {"color": "black", "linestyle": LINESTYLES["prediction"], "linewidth": 1.0}    # theory: black dashed
THRESHOLD = {"color": "0.3", "linestyle": LINESTYLES["threshold"], "linewidth": 1.1}   # bound, tolerance: dotted
FIT_BAND_GID = "fit-interval"   # the band of a fit's interval (a test finds it by this id)


def save(fig, pdf: str | os.PathLike, png: str | os.PathLike | None, dpi: int) -> None:
    """Write PDF (no creation date, so identical inputs give identical bytes) and PNG."""
    pathlib.Path(pdf).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(pdf, metadata={"CreationDate": None})
    if png:
        fig.savefig(png, dpi=dpi)
    plt.close(fig)


def _below_axis_points(ax) -> float:
    """How far below the axes (in points) the x tick labels and the x label reach."""
    tick = plt.rcParams["xtick.major.size"] + plt.rcParams["xtick.major.pad"] + 1.25 * plt.rcParams["xtick.labelsize"]
    label = ax.xaxis.label
    lines = label.get_text().count("\n") + 1 if label.get_text() else 0
    math = 4.0 if "$" in label.get_text() else 0.0       # sub- and superscripts are taller
    return tick + (ax.xaxis.labelpad + 1.3 * label.get_fontsize() * lines + math if lines else 0.0) + 3.0


def legend_below(ax, ncol: int = 2, source=(), **kw):
    """The legend under the axes, below its x label, outside the data (a legend never covers a curve):
    offset in points, so that it clears the labels whatever the panel's height. `source`: other axes
    whose entries it gathers too (one legend for a column of panels)."""
    from matplotlib.transforms import offset_copy

    handles, labels = [], []
    for other in (*source, ax):
        for handle, label in zip(*other.get_legend_handles_labels()):
            if label not in labels:
                handles.append(handle)
                labels.append(label)
    if not handles:
        return None
    anchor = offset_copy(ax.transAxes, fig=ax.figure, y=-_below_axis_points(ax), units="points")
    return ax.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.0), bbox_transform=anchor,
                     ncol=ncol, frameon=False, **kw)


def legend_right(ax, **kw):
    """The legend to the right of the axes, outside the data."""
    handles, labels = ax.get_legend_handles_labels()
    if not handles:
        return None
    return ax.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False, **kw)


def fit_line(ax, widths, values, color, *, extend_to=None, label="fit", fmt="+.2f", band=True, linewidth=0.9):
    """The power law fitted to values (seeds, widths) against width, with its interval.

    The slope is results.stats.slope_estimate (the mean of the seeds' log-log slopes with its 95%
    interval, as the claims compute it); the line passes through the centre of the data (mean log
    width, mean log value) and the band spans the slopes of the interval, from the centre out to
    `extend_to` (default the widest width); band=False draws the line alone (where another band
    stands for it). Returns the Estimate.
    """
    from ..results import stats

    widths = np.asarray(widths, float)
    values = np.atleast_2d(np.asarray(values, float))
    slope = stats.slope_estimate(widths, values)
    logs = np.log(np.where(np.isfinite(values) & (values > 0), values, np.nan))
    ok = np.isfinite(logs)
    if not np.isfinite(slope.value) or ok.sum() < 2:
        return slope
    centre_x = np.mean(np.log(np.broadcast_to(widths, values.shape)[ok]))
    centre_y = np.mean(logs[ok])
    grid = np.geomspace(widths.min(), max(widths.max(), extend_to or 0), 40)
    u = np.log(grid) - centre_x
    ax.plot(grid, np.exp(centre_y + slope.value * u), color=color, linewidth=linewidth,
            label=f"{label}: slope {slope.text(fmt)}" if label else None)
    if band and np.isfinite(slope.low) and np.isfinite(slope.high):
        lines = np.exp(centre_y + np.outer([slope.low, slope.high], u))
        band = ax.fill_between(grid, lines.min(axis=0), lines.max(axis=0), color=color, alpha=0.18, linewidth=0)
        band.set_gid(FIT_BAND_GID)
    return slope


def fit_band_entry(ax):
    """One legend entry that explains the fits' bands."""
    ax.fill_between([], [], [], color="0.6", alpha=0.3, linewidth=0, label="band: 95% interval of the slope")


def mark_excluded(ax, x, y=None, label="diverged or left out"):
    """Mark points left out (a recorded divergence, a width that did not train) where they would be:
    at (x, y) where y is finite, else at the top edge of the panel above x. One legend entry per panel."""
    x = np.atleast_1d(np.asarray(x, float))
    y = np.full(x.shape, np.nan) if y is None else np.broadcast_to(np.asarray(y, float), x.shape)
    known = set(ax.get_legend_handles_labels()[1])
    entry = label if label not in known else None
    finite = np.isfinite(y)
    if finite.any():
        ax.plot(x[finite], y[finite], label=entry, **MARK_EXCLUDED)
        entry = None
    if (~finite).any():
        ax.plot(x[~finite], np.full((~finite).sum(), 0.96), transform=ax.get_xaxis_transform(), clip_on=False,
                label=entry, **MARK_EXCLUDED)


def log_ticks(ax, x_base: int = 2):
    """Readable ticks on log axes: widths as plain integers (256, 1024) on a base-2 x axis, and
    decimal labels on a log y axis."""
    from matplotlib.ticker import FuncFormatter, LogLocator

    if ax.get_xscale() == "log":
        low, high = ax.get_xlim()
        # At most about six labels: every power of 2 over a short range, every power of 4 or 16 beyond.
        base = x_base
        while high / max(low, 1e-300) > base ** 6:
            base *= base
        ax.xaxis.set_major_locator(LogLocator(base=base))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(FuncFormatter(lambda v, _: ""))
    if ax.get_yscale() == "log":
        low, high = ax.get_ylim()
        if low > 0 and high / low < 10:   # less than a decade: widen it so that a labelled tick shows
            centre = (low * high) ** 0.5
            ax.set_ylim(centre / 10 ** 0.5, centre * 10 ** 0.5)
            low, high = ax.get_ylim()
        # At least two labelled ticks: powers of ten, else 1-2-5 steps, else every integer mantissa.
        decades = np.floor(np.log10(high)) - np.ceil(np.log10(low)) + 1 if low > 0 else 2
        if decades < 2:
            subs = (1.0, 2.0, 5.0) if decades == 1 or high / low > 5 else tuple(range(1, 10))
            ax.yaxis.set_major_locator(LogLocator(base=10, subs=subs))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _: ""))


def mark_diverged(ax, diverged: dict, label="diverged (recorded)"):
    """A curve against steps whose seeds diverged ({seed: step}): marked above each divergence step."""
    if diverged:
        mark_excluded(ax, sorted({int(step) for step in diverged.values()}), label=label)


def footnote(fig, text: str):
    """A small line at the bottom of the figure (the regime the runs reached)."""
    if text:
        fig.text(0.01, -0.02, text, fontsize=MIN_FONT_PT, color="0.35", ha="left", va="top", transform=fig.transFigure)


def empty(ax, text: str):
    """A panel that says why it has nothing to show."""
    import textwrap

    ax.text(0.5, 0.5, textwrap.fill(text, 36), ha="center", va="center", fontsize=MIN_FONT_PT, transform=ax.transAxes)
    ax.set_axis_off()


MARK_EXCLUDED = {"marker": "x", "color": "tab:red", "markersize": 5, "linestyle": "none"}   # diverged/left out
