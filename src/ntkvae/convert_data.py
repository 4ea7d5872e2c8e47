"""CLI: write the seeded, normalized subset of a prepared tfds dataset to HDF5.

    python -m ntkvae.convert_data --dataset mnist --stamp results/data/tfds/mnist.json \
        --n 1000 --seed 0 [--resolution 7] --out results/data/mnist.h5

Reads the dataset that `ntkvae.fetch_data` prepared (no network) and writes the common
layout of `ntkvae.datasets` (see its docstring), with the fetch record as provenance.
"""

from __future__ import annotations

import argparse
import logging
import sys

from . import datasets, io, tfdata
from .config import RESOLUTIONS, int_at_least

log = logging.getLogger("ntkvae.convert_data")


def main(argv=None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    p = argparse.ArgumentParser(prog="python -m ntkvae.convert_data", description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", required=True, choices=sorted(tfdata.SOURCES))
    p.add_argument("--stamp", required=True, help="the fetch record (JSON) written by ntkvae.fetch_data")
    p.add_argument("--n", type=int_at_least(2), required=True)
    p.add_argument("--seed", type=int_at_least(0), default=0)
    p.add_argument("--no-center", dest="center", action="store_false", help="do not subtract the mean image")
    p.add_argument("--resolution", type=int, help="image side in pixels: a block average of the dataset's own "
                                                   "(mnist 14 or 7; dsprites, cars3d 32, 16 or 8)")
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    if args.resolution is not None and args.resolution not in RESOLUTIONS[args.dataset]:
        p.error(f"--resolution {args.resolution} is not one of {list(RESOLUTIONS[args.dataset])} for {args.dataset}")
    src = tfdata.source(args.dataset)
    try:
        tfdata.require_data_extra()
        from .tfdata import convert

        stamp = convert.read_stamp(args.stamp)
        raw = datasets.at_resolution(convert.read_subset(src, stamp, args.n, args.seed), args.dataset,
                                     args.resolution)
        config = {"name": args.dataset, "n": args.n, "seed": args.seed, "center": args.center, "fetch": stamp,
                  **({"resolution": args.resolution} if args.resolution is not None else {})}
        datasets.write_dataset(args.out, args.dataset, raw, n=args.n, seed=args.seed, center=args.center,
                               config=config)
    except ModuleNotFoundError as err:
        if err.name not in tfdata.DATA_EXTRA_MODULES:
            raise
        log.error("%s", tfdata.missing_data_extra(args.dataset, err))
        return 2
    except (tfdata.DataFetchError, ValueError, io.WorkflowFileError) as err:
        log.error("%s", err)
        return 2
    log.info("wrote %d examples of %s (d=%d) to %s", args.n, args.dataset, raw.images[0].size, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
