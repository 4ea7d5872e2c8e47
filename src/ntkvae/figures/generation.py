"""F8, image generation: reconstructions, samples from the prior and latent traversals.

What the trained over-parameterized VAE generates, per width: noise-averaged reconstructions
of training examples, decodings of z ~ N(0, I) (the generative model), and, for the widest
width, decodings along the principal directions of the encoded means (each row one
direction, from -2.5 to +2.5 standard deviations of the data's latent means). The decoder
outputs are mapped back to pixels with the dataset's normalization.
"""

from __future__ import annotations

import matplotlib.pyplot as plt

from .. import io
from . import style
from .images import ImageSpace, mosaic, show
from ..results.runs import describe, load_runs, usable


def plot(paths, pdf, png=None, dpi=150, dataset=None, data=None):
    style.apply()
    runs = load_runs(paths)
    space = ImageSpace(data)
    if not usable(runs):
        raise io.InputFileError(f"F8: every seed of every run diverged in {', '.join(paths)}; nothing to show")
    widest = max(usable(runs), key=lambda r: (r.width, r.run))   # a width whose every seed diverged: blank rows
    gen = widest.data["generation"]
    directions, steps = gen["traversal"].shape[1:3]
    index = runs[0].data["reconstructions"]["index"]
    image_h = space.shape[0]
    rows_top = 1 + len(runs)
    fig = plt.figure(figsize=(style.FULL_WIDTH_IN, 1.0 + 0.55 * (rows_top + directions)))
    grid = fig.add_gridspec(2, 2, height_ratios=[rows_top, directions], width_ratios=[len(index), gen["prior"].shape[1]])
    recon = [space.images[index]] + [space.to_images(r.data["reconstructions"]["mean"][r.first_kept_row], index) if r.usable
                                     else space.blank(len(index)) for r in runs]
    prior = [space.blank(gen["prior"].shape[1])] + [space.to_images(r.data["generation"]["prior"][r.first_kept_row]) if r.usable
                                                    else space.blank(gen["prior"].shape[1]) for r in runs]
    labels = ["data"] + [f"{r.run} m={r.width}" + ("" if r.usable else " (diverged)") for r in runs]
    for col, (rows, title) in enumerate(((recon, "reconstructions (noise-averaged)"),
                                         (prior, r"samples: decoder at $z\sim N(0,I)$"))):
        ax = fig.add_subplot(grid[0, col])
        show(ax, mosaic(rows), title)
        ax.set_yticks([(i + 0.5) * (image_h + 1) for i in range(len(rows))], labels if col == 0 else [""] * len(rows))
        ax.tick_params(length=0)
    ax_t = fig.add_subplot(grid[1, :])
    show(ax_t, mosaic(space.to_images(gen["traversal"][widest.first_kept_row])),
         f"latent traversals, {widest.run} m={widest.width}: principal directions of the latent means, "
         f"{gen['values'][0]:+g} to {gen['values'][-1]:+g} sd")
    ax_t.set_yticks([(i + 0.5) * (image_h + 1) for i in range(directions)], [f"PC {i + 1}" for i in range(directions)])
    ax_t.tick_params(length=0)
    fig.suptitle(f"F8 image generation on {dataset or widest.dataset} ({describe(widest)}; seed {int(widest.data['seeds'][widest.first_kept_row])})")
    fig.tight_layout()
    style.divergence_footnote(fig, runs)
    style.save(fig, pdf, png, dpi)
