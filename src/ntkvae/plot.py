"""CLI: render one figure from HDF5 files.

    python -m ntkvae.plot convergence --inputs results/train/digits/*/w*.h5 \
        --pdf results/figures/f1_convergence_digits.pdf --png results/figures/f1_convergence_digits.png
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import sys

from . import io
from .planning import FIGURES_BY_TOPIC

# One entry per figure of planning.FIGURES: topic -> plotting module (ntkvae.figures.<topic>).
FIGURES = {topic: figure.module for topic, figure in FIGURES_BY_TOPIC.items()}


def main(argv=None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    logging.getLogger("fontTools").setLevel(logging.WARNING)  # font subsetting in PDF output is noise
    p = argparse.ArgumentParser(prog="python -m ntkvae.plot", description=__doc__.split("\n\n")[0])
    p.add_argument("figure", choices=sorted(FIGURES))
    p.add_argument("--inputs", nargs="+", required=True, help="HDF5 files the figure is built from")
    p.add_argument("--pdf", required=True)
    p.add_argument("--png")
    p.add_argument("--dpi", type=int, default=150)
    p.add_argument("--dataset", help="dataset name for the title")
    p.add_argument("--data", help="the dataset's HDF5 file (figures that show images)")
    p.add_argument("--kernels", nargs="+", help="kernel HDF5 files (figures with infinite-width theory)")
    p.add_argument("--settings", help="JSON of figure settings from the config (figures that need them)")
    args = p.parse_args(argv)
    module = importlib.import_module(FIGURES[args.figure])
    extra = {key: getattr(args, key) for key in ("data", "kernels") if getattr(args, key)}
    if args.settings:
        extra["settings"] = json.loads(args.settings)
    try:
        module.plot(args.inputs, args.pdf, args.png, dpi=args.dpi, dataset=args.dataset, **extra)
    except io.InputFileError as err:
        logging.getLogger("ntkvae.plot").error("%s", err)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
