"""CLI: fetch and prepare one of the paper's datasets with tensorflow-datasets (a local step).

    python -m ntkvae.fetch_data --dataset mnist --data-dir resources/tfds \
        --manual-dir resources/tfds/downloads/manual --stamp results/data/tfds/mnist.json

Without network it fails within --timeout seconds, naming the files to place by hand in
the manual directory; rerun it once they are there. The stamp (JSON) records where the
prepared data is, its split sizes and the source files; it is written only on success.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import pathlib
import sys
import time

from . import io, tfdata
from .config import finite_float, int_at_least

log = logging.getLogger("ntkvae.fetch_data")


def write_stamp(path: pathlib.Path, record: dict) -> None:
    """Write the record atomically (temporary file, then rename; io.OutputFileError on failure)."""
    io.write_text(path, json.dumps(record, indent=2, sort_keys=True) + "\n")


def main(argv=None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ start-up chatter, not errors
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    p = argparse.ArgumentParser(prog="python -m ntkvae.fetch_data", description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", required=True, choices=sorted(tfdata.SOURCES))
    p.add_argument("--data-dir", required=True, help="tfds data directory (prepared datasets, downloads)")
    p.add_argument("--manual-dir", help="directory of hand-placed source files (default <data-dir>/downloads/manual)")
    p.add_argument("--timeout", type=finite_float(above=0, at_most=25), default=10.0,
                   help="seconds for the network check and each connect")
    p.add_argument("--retries", type=int_at_least(0), default=3, help="HTTP retries per file (tfds' own default is 10)")
    p.add_argument("--no-verify-checksums", dest="verify", action="store_false",
                   help="accept hand-placed files whatever their checksum (their SHA-256 is recorded)")
    p.add_argument("--no-download", dest="download", action="store_false",
                   help="never use the network: prepare only from the manual directory")
    p.add_argument("--stamp", required=True, help="JSON record written on success")
    args = p.parse_args(argv)

    data_dir = pathlib.Path(args.data_dir).expanduser()
    manual_dir = pathlib.Path(args.manual_dir).expanduser() if args.manual_dir else data_dir / "downloads" / "manual"
    src = tfdata.source(args.dataset)
    start = time.monotonic()
    try:
        tfdata.require_data_extra()
        from .tfdata import fetch

        record = fetch.prepare(src, data_dir, manual_dir.resolve(), timeout=args.timeout, retries=args.retries,
                               verify_checksums=args.verify, download=args.download)
    except ModuleNotFoundError as err:
        if err.name not in tfdata.DATA_EXTRA_MODULES:
            raise
        log.error("%s", tfdata.missing_data_extra(args.dataset, err))
        return 2
    except (tfdata.DataFetchError, io.WorkflowFileError) as err:
        log.error("%s", err)
        log.error("fetch of %s failed after %.1f s; nothing was written", args.dataset, time.monotonic() - start)
        return 2
    record["verify_checksums"] = args.verify
    try:
        write_stamp(pathlib.Path(args.stamp), record)
    except io.OutputFileError as err:
        log.error("%s", err)
        return 2
    log.info("%s ready in %s (%s) after %.1f s", args.dataset, record["prepared_dir"],
             ", ".join(f"{k}: {v}" for k, v in record["splits"].items()), time.monotonic() - start)
    return 0


if __name__ == "__main__":
    sys.exit(main())
