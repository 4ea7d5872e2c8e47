"""CLI: the claims table, computed from the workflow's HDF5 files (never written by hand).

    python -m ntkvae.claims --inputs results/train/*/*/w*.h5 [--kernels results/kernels/*/*.h5] \
        --settings '<figures section as JSON>' --md results/claims.md --tsv results/claims.tsv [--html results/claims.html]
"""

from __future__ import annotations

import argparse
import logging
import sys

from .. import io
from ..config import CLAIMS_SETTINGS_EXTRA, ConfigError, parse_section
from . import compute, divergences, write_html, write_md, write_tsv

log = logging.getLogger("ntkvae.claims")

def main(argv=None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    p = argparse.ArgumentParser(prog="python -m ntkvae.claims", description=__doc__.split("\n\n")[0])
    p.add_argument("--inputs", nargs="+", required=True, help="training HDF5 files")
    p.add_argument("--kernels", nargs="*", default=[], help="kernel HDF5 files (results/kernels/...)")
    p.add_argument("--data", nargs="*", default=[], help="dataset HDF5 files (results/data/<dataset>.h5)")
    p.add_argument("--settings", required=True, help="JSON: the figures section plus kl_runs and datasets")
    p.add_argument("--md", required=True)
    p.add_argument("--tsv", required=True)
    p.add_argument("--html", help="the summary and table as HTML, for the report")
    args = p.parse_args(argv)
    try:
        settings = parse_section(args.settings, "figures", "--settings", extra=CLAIMS_SETTINGS_EXTRA, required=("datasets",))
        claims = compute(args.inputs, settings, settings["datasets"], args.kernels, args.data)
        write_tsv(claims, args.tsv)
        recorded = divergences(args.inputs)
        write_md(claims, args.md, recorded)
        if args.html:
            write_html(claims, args.html, recorded)
    except (io.WorkflowFileError, ConfigError) as err:
        log.error("%s", err)
        return 1
    for c in claims:
        log.info("%-8s %s [%s]: measured %s, predicted %s", c.verdict, c.claim, c.dataset, c.measured, c.predicted)
    return 0


if __name__ == "__main__":
    sys.exit(main())
