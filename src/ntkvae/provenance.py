"""CLI: record the configuration a run used (validated, defaults and generated sweep runs filled
in), the workflow's git commit and the package versions, for the report's provenance section.

    python -m ntkvae.provenance --config '<config as JSON>' --out results/provenance.yaml
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys

import yaml

from . import io


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m ntkvae.provenance", description=__doc__.split("\n\n")[0])
    p.add_argument("--config", required=True, help="the resolved config as JSON")
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    record = io.provenance()
    document = {
        "git_commit": record["git_commit"],
        "versions": json.loads(record["versions"]),
        "config": json.loads(args.config),
    }
    out = pathlib.Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("# Provenance of this run (written by python -m ntkvae.provenance)\n"
                   + yaml.safe_dump(document, sort_keys=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
