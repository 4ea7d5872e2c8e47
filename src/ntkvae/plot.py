"""CLI: render one figure from HDF5 files.

    python -m ntkvae.plot convergence --inputs results/train/digits/*/w*.h5 \
        --pdf results/figures/f1_convergence_digits.pdf --png results/figures/f1_convergence_digits.png
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from . import io
from .config import FIGURE_SETTINGS_EXTRA, ConfigError, int_at_least, parse_section
from .planning import FIGURES_BY_TOPIC

# One entry per figure of planning.FIGURES: topic -> plotting module (ntkvae.figures.<topic>).
FIGURES = {topic: figure.module for topic, figure in FIGURES_BY_TOPIC.items()}


# The options a figure cannot be drawn without (the others take only --inputs).
NEEDS = {"kernel_constancy": ("kernels",), "rate": ("kernels", "data"), "krr": ("kernels", "data"),
         "narrow_wide": ("data",), "generation": ("data",), "min_width": ("kernels", "data")}


def main(argv=None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    logging.getLogger("fontTools").setLevel(logging.WARNING)  # font subsetting in PDF output is noise
    p = argparse.ArgumentParser(prog="python -m ntkvae.plot", description=__doc__.split("\n\n")[0])
    p.add_argument("figure", choices=sorted(FIGURES))
    p.add_argument("--inputs", nargs="+", required=True, help="HDF5 files the figure is built from")
    p.add_argument("--pdf", required=True)
    p.add_argument("--png")
    p.add_argument("--dpi", type=int_at_least(50), default=150)
    p.add_argument("--dataset", help="dataset name for the title")
    p.add_argument("--data", help="the dataset's HDF5 file (figures that show images)")
    p.add_argument("--kernels", nargs="+", help="kernel HDF5 files (figures with infinite-width theory)")
    p.add_argument("--settings", help="JSON of figure settings from the config (figures that need them)")
    args = p.parse_args(argv)
    missing = [f"--{key}" for key in NEEDS.get(args.figure, ()) if not getattr(args, key)]
    if missing:
        p.error(f"figure {args.figure} needs {' and '.join(missing)}")
    module = importlib.import_module(FIGURES[args.figure])
    extra = {key: getattr(args, key) for key in ("data", "kernels") if getattr(args, key)}
    try:
        if args.settings:
            extra["settings"] = parse_section(args.settings, "figures", "--settings", extra=FIGURE_SETTINGS_EXTRA)
        module.plot(args.inputs, args.pdf, args.png, dpi=args.dpi, dataset=args.dataset, **extra)
    except (io.WorkflowFileError, ConfigError) as err:
        logging.getLogger("ntkvae.plot").error("%s", err)
        return 1
    except OSError as err:   # matplotlib writing the PDF or PNG (a full disk, no permission)
        if err.errno is None:
            raise
        logging.getLogger("ntkvae.plot").error("%s", io.write_failure(err.filename or args.pdf, err))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
