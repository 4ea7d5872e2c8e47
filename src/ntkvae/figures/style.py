"""Shared look of the figures: sizes for a paper column, colours by width, mean and spread."""

from __future__ import annotations

import os
import pathlib

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

COLUMN_WIDTH_IN = 3.4   # one column of a two-column paper
FULL_WIDTH_IN = 7.0

RC = {
    "font.size": 8,
    "axes.titlesize": 8,
    "axes.labelsize": 8,
    "legend.fontsize": 6.5,
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


THEORY = {"color": "black", "linestyle": "--", "linewidth": 1.0}   # theory overlays: black dashed


def save(fig, pdf: str | os.PathLike, png: str | os.PathLike | None, dpi: int) -> None:
    """Write PDF (no creation date, so identical inputs give identical bytes) and PNG."""
    pathlib.Path(pdf).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(pdf, metadata={"CreationDate": None})
    if png:
        fig.savefig(png, dpi=dpi)
    plt.close(fig)


def legend_below(ax, ncol: int = 2, **kw):
    """The legend under the axes, outside the data (a legend never covers a curve)."""
    handles, labels = ax.get_legend_handles_labels()
    if not handles:
        return None
    return ax.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=ncol, frameon=False,
                     **kw)


def legend_right(ax, **kw):
    """The legend to the right of the axes, outside the data."""
    handles, labels = ax.get_legend_handles_labels()
    if not handles:
        return None
    return ax.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False, **kw)


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
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _: ""))


def footnote(fig, text: str):
    """A small line at the bottom of the figure (the regime the runs reached)."""
    if text:
        fig.text(0.01, -0.02, text, fontsize=6, color="0.35", ha="left", va="top", transform=fig.transFigure)


def empty(ax, text: str):
    """A panel that says why it has nothing to show."""
    ax.text(0.5, 0.5, text, ha="center", va="center", fontsize=7, wrap=True, transform=ax.transAxes)
    ax.set_axis_off()


MARK_EXCLUDED = {"marker": "x", "color": "tab:red", "markersize": 5, "linestyle": "none"}   # diverged/left out
