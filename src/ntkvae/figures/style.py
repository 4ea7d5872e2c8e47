"""Shared look of the figures: sizes for a paper column, colours by width, mean and spread."""

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


def bars(values_per_width, *, log: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Centre (geometric mean for log axes) and error-bar lengths (2, k) over the seeds at each of
    k widths, given one array of per-seed values per width: widths may keep different numbers of
    seeds, since the seeds that diverged are left out."""
    centre, low, high = measures.per_width(values_per_width, log=log)
    return centre, np.stack([np.maximum(centre - low, 0), np.maximum(high - centre, 0)])


def divergence_footnote(fig, runs) -> None:
    """Name, below the figure, the seeds left out because their training diverged."""
    note = divergence_note(runs)
    if note:
        fig.text(0.01, 0.0, note, fontsize=5.5, color="tab:red", ha="left", va="top", wrap=True)


def nothing_to_show(ax, text: str) -> None:
    """An empty panel that says why (e.g. every seed diverged, or nothing was recorded)."""
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", fontsize=7, color="tab:red", wrap=True)
    ax.set_xticks([])
    ax.set_yticks([])


THEORY = {"color": "black", "linestyle": "--", "linewidth": 1.0}   # theory overlays: black dashed


def save(fig, pdf: str | os.PathLike, png: str | os.PathLike | None, dpi: int) -> None:
    """Write PDF (no creation date, so identical inputs give identical bytes) and PNG."""
    pathlib.Path(pdf).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(pdf, metadata={"CreationDate": None})
    if png:
        fig.savefig(png, dpi=dpi)
    plt.close(fig)
