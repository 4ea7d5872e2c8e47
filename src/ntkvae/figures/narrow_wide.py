"""F7, over-parameterized vs standard VAE: a narrow model against the widest one, same settings.

Claim tested (the paper's experiment 3): over-parameterization makes gradient descent
converge, fast and to a low residual, where a narrow VAE of the usual size stalls. Top:
mean-function residual and training objective vs step for both (one legend, below them; red
crosses above a step: a seed diverged there, recorded). Bottom: the same training examples,
their noise-averaged reconstructions by the narrow and the wide model.
"""

from __future__ import annotations

import matplotlib.pyplot as plt

from .. import io
from . import style
from .images import ImageSpace, mosaic, show
from ..results.runs import describe, finite_or_nan, load_runs

NARROW_RUN = "narrow"
COLORS = {"narrow": "#d95f02", "wide": "#1b9e77"}


def split(runs):
    """(narrow run, widest run of the other run)."""
    narrow = [r for r in runs if r.run == NARROW_RUN]
    wide = [r for r in runs if r.run != NARROW_RUN]
    if not narrow or not wide:
        raise io.InputFileError("F7 needs the run 'narrow' and at least one width of the wide run among the inputs "
                                f"({', '.join(r.path for r in runs) or 'none'})")
    return min(narrow, key=lambda r: r.width), max(wide, key=lambda r: r.width)


def plot(paths, pdf, png=None, dpi=150, dataset=None, data=None):
    style.apply()
    narrow, wide = split(load_runs(paths))
    space = ImageSpace(data)
    fig = plt.figure(figsize=(style.FULL_WIDTH_IN, 5.2))
    grid = fig.add_gridspec(2, 2, height_ratios=[1.3, 1])
    ax_res, ax_obj = fig.add_subplot(grid[0, 0]), fig.add_subplot(grid[0, 1])
    for kind, r in (("narrow", narrow), ("wide", wide)):
        label = f"{kind}: m = {r.width}"
        if r.diverged:
            label += f" ({'all seeds' if not r.usable else 'seeds ' + ', '.join(sorted(r.diverged, key=int))} " \
                     f"diverged)"
        # Every seed, the diverged ones up to their divergence: the curves show where training broke down.
        ev = r.data["eval"]
        style.mean_and_band(ax_res, ev["step"], finite_or_nan(ev["mean_function_mse"]), COLORS[kind], label, log=True)
        style.mean_and_band(ax_obj, r.data["train"]["step"], finite_or_nan(r.data["train"]["objective"]),
                            COLORS[kind], label, log=True)
        for ax in (ax_res, ax_obj):
            style.mark_diverged(ax, r.diverged)
    for ax, ylabel in ((ax_res, "mean-function residual"), (ax_obj, "training objective")):
        ax.set_yscale("log")
        ax.set_xlabel("gradient-descent step t")
        ax.set_ylabel(ylabel)
        style.log_ticks(ax)
    style.legend_below(ax_res, ncol=1, source=[ax_obj])
    ax_obj.set_title(describe(wide))
    ax_img = fig.add_subplot(grid[1, :])
    index = narrow.data["reconstructions"]["index"]
    rows = [space.images[index], *(space.to_images(r.data["reconstructions"]["mean"][r.first_kept_row], index) if r.usable
                                   else space.blank(len(index)) for r in (narrow, wide))]   # blank: diverged
    show(ax_img, mosaic(rows))
    ax_img.set_yticks([(i + 0.5) * rows[0].shape[1] for i in range(3)],
                      ["data", f"narrow m={narrow.width}", f"wide m={wide.width}"])
    ax_img.tick_params(length=0)
    seed = next((int(r.data["seeds"][r.first_kept_row]) for r in (narrow, wide) if r.usable), None)
    ax_img.set_title(f"training examples and noise-averaged reconstructions (seed {seed}; blank: diverged)")
    fig.suptitle(f"F7 narrow vs over-parameterized VAE on {dataset or wide.dataset} "
                 f"(mean over seeds, band: min-max)")
    fig.tight_layout()
    style.save(fig, pdf, png, dpi)
