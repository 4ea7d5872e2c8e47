"""CLI: record the configuration a run used (validated, defaults and generated sweep runs filled
in), the workflow's git commit, the package versions and the devices the training jobs ran on,
for the report's provenance section.

    python -m ntkvae.provenance --config '<config as JSON>' --out results/provenance.yaml \
        [--html results/provenance.html] [--inputs results/train/*/*/w*.h5]

provenance.yaml is the machine-readable record; provenance.html the same as readable text for
the Snakemake report (commit, devices, versions, the config as YAML). With --inputs, the devices,
commits and versions come from the training files' own attributes (io.provenance), which say
where each training job really ran (a GPU node of a cluster, say), besides this job's versions.
"""

from __future__ import annotations

import argparse
import html
import json
import sys
from collections import Counter

import yaml

from . import io


def training_records(paths) -> list[dict]:
    """Per training file: its device, git commit and package versions (attributes only)."""
    import h5py

    records = []
    for path in paths:
        with h5py.File(path, "r") as f:
            attrs = dict(f.attrs)
        versions = attrs.get("versions")
        try:
            versions = json.loads(versions) if isinstance(versions, (str, bytes)) else {}
        except json.JSONDecodeError:
            versions = {}
        records.append({"path": str(path), "device": str(attrs.get("device", "not recorded")),
                        "git_commit": str(attrs.get("git_commit", "not recorded")), "versions": versions})
    return records


def document(config: dict, training=()) -> dict:
    record = io.provenance()
    doc = {"git_commit": record["git_commit"], "versions": json.loads(record["versions"])}
    if training:
        doc["training_devices"] = dict(Counter(r["device"] for r in training))
        doc["training_commits"] = dict(Counter(r["git_commit"] for r in training))
        doc["training_versions"] = {name: sorted({r["versions"][name] for r in training if name in r["versions"]})
                                    for name in sorted({k for r in training for k in r["versions"]})}
    doc["config"] = config
    return doc


def _counted(counts: dict) -> str:
    return ", ".join(f"{html.escape(str(k))} ({v} training file{'s' if v != 1 else ''})" for k, v in counts.items())


def render_html(doc: dict) -> str:
    """The record as a readable HTML page (no JSON): commit, devices, versions, config as YAML."""
    style = ("body{font-family:system-ui,sans-serif;font-size:14px;margin:1rem;color:#0f172a;background:#fff}"
             "table{border-collapse:collapse}td,th{border-bottom:1px solid #cbd5e1;padding:2px 8px;text-align:left}"
             "pre{background:#f1f5f9;padding:0.5rem;font-size:12px;white-space:pre-wrap}")
    parts = ['<!doctype html><html><head><meta charset="utf-8"><title>Provenance</title>',
             f"<style>{style}</style></head><body>", "<h1>Provenance of this run</h1>", "<dl>",
             f"<dt>git commit of the workflow</dt><dd><code>{html.escape(str(doc['git_commit']))}</code></dd>"]
    if "training_devices" in doc:
        parts.append(f"<dt>devices the training jobs ran on</dt><dd>{_counted(doc['training_devices'])}</dd>")
        parts.append(f"<dt>commits of the training jobs</dt><dd>{_counted(doc['training_commits'])}</dd>")
    parts.append("</dl>")
    names = list(doc["versions"]) + [n for n in doc.get("training_versions", {}) if n not in doc["versions"]]
    parts += ["<h2>Package versions</h2>", "<table><thead><tr><th>package</th><th>this job (plots, claims)</th>"
              + ("<th>training jobs</th>" if "training_versions" in doc else "") + "</tr></thead><tbody>"]
    for name in names:
        row = f"<td>{html.escape(name)}</td><td>{html.escape(str(doc['versions'].get(name, '')))}</td>"
        if "training_versions" in doc:
            row += f"<td>{html.escape(', '.join(doc['training_versions'].get(name, [])))}</td>"
        parts.append(f"<tr>{row}</tr>")
    parts += ["</tbody></table>", "<h2>Configuration</h2>",
              "<p>As the workflow resolved it: schema defaults filled in, the sweep runs generated from the "
              "<code>figures</code> section added.</p>",
              f"<pre>{html.escape(yaml.safe_dump(doc['config'], sort_keys=False))}</pre>", "</body></html>"]
    return "\n".join(parts) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m ntkvae.provenance", description=__doc__.split("\n\n")[0])
    p.add_argument("--config", required=True, help="the resolved config as JSON")
    p.add_argument("--out", required=True, help="the record as YAML")
    p.add_argument("--html", help="the record as readable HTML, for the report")
    p.add_argument("--inputs", nargs="*", default=[], help="training HDF5 files (their devices and versions)")
    args = p.parse_args(argv)
    try:
        doc = document(json.loads(args.config), training_records(args.inputs))
        io.write_text(args.out, "# Provenance of this run (written by python -m ntkvae.provenance)\n"
                      + yaml.safe_dump(doc, sort_keys=False))
        if args.html:
            io.write_text(args.html, render_html(doc))
    except (OSError, io.WorkflowFileError, json.JSONDecodeError) as err:
        print(f"python -m ntkvae.provenance: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
