"""What a workflow run left behind, in a few lines for the console: the verdicts of the claims, the
divergences the training jobs recorded (which runs, widths, seeds) and where the figures, the
claims and the report are. The Snakefile's onsuccess and onerror handlers print it at the end of
`snakemake --cores all`; a recorded divergence is never left out of it.

    python -m ntkvae.summary [--directory DIR] [--failed | --finished] [--log LOG]

Reads only what is on disk below DIR/results (paths.py): the claims table (results/claims.tsv,
when the claims rule has run) and the attributes of the training files (their `diverged` record,
not their data, so that it stays fast and works on a run that stopped half-way). Never raises on
a missing or unreadable file: it says so in its line instead.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import glob
import json
import os
import sys

from . import paths

# The verdict words of the claims table (claims.table.VERDICTS), in the order they are counted.
VERDICTS = ("holds", "fails", "inconclusive", "not evaluated")
VERDICT_WORDS = {"holds": "held", "fails": "failed", "inconclusive": "inconclusive", "not evaluated": "not evaluated"}
LISTED = 6   # at most this many failed/inconclusive claims and diverged runs are named one by one


@dataclasses.dataclass
class Divergence:
    """The seeds of one training file recorded as diverged ({seed: first step})."""

    path: str
    dataset: str
    run: str
    width: int
    seeds: dict[int, int]
    all_seeds: int | None = None   # how many seeds the file has (None: unknown)

    def text(self) -> str:
        seeds = sorted(self.seeds)
        which = "all seeds" if self.all_seeds is not None and len(seeds) == self.all_seeds else \
            f"seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))}"
        steps = ", ".join(str(self.seeds[s]) for s in seeds)
        return f"{self.dataset} run {self.run}, m = {self.width}: {which} (from step{'s' if len(seeds) > 1 else ''} {steps})"


@dataclasses.dataclass
class Claims:
    path: str
    counts: dict[str, int]
    open: list[str]            # "key (dataset): verdict" of the failed and inconclusive claims
    stale: bool = False        # older than the newest training file (from an earlier run)


@dataclasses.dataclass
class Summary:
    directory: str
    claims: Claims | None
    claims_problem: str        # why there are no claims ("" when there are)
    divergences: list[Divergence]
    unreadable: list[str]      # training files whose divergence record could not be read
    training_files: int
    figures: list[str]         # figure PNGs/PDFs present (relative paths)
    report: str | None         # the report, when it exists

    @property
    def diverged_seeds(self) -> int:
        return sum(len(d.seeds) for d in self.divergences)


def _rel(directory: str, path: str) -> str:
    return os.path.relpath(path, directory)


def training_files(directory: str) -> list[str]:
    """The training files below `directory` (paths.TRAIN), sorted, and the seed-group parts
    (paths.TRAIN_PART) of those not joined yet (a run that stopped between the parts and the join
    has recorded its divergences only there)."""
    def found(kind, **stars):
        pattern = os.path.join(directory, kind.pattern.format(**stars))
        return sorted(p for p in glob.glob(pattern) if kind.parse(_rel(directory, p)) is not None)

    joined = found(paths.TRAIN, dataset="*", run="*", width="*")
    done = {tuple(sorted(paths.TRAIN.parse(_rel(directory, p)).items())) for p in joined}
    parts = [p for p in found(paths.TRAIN_PART, dataset="*", run="*", width="*", seeds="*")
             if tuple(sorted((k, v) for k, v in paths.TRAIN_PART.parse(_rel(directory, p)).items() if k != "seeds"))
             not in done]
    return joined + parts


def read_divergence(path: str, directory: str = ".") -> Divergence | None:
    """The divergence a training file records (its `diverged` attribute), or None when it records
    none. Raises OSError or ValueError when the file cannot be read."""
    import h5py

    where = paths.TRAIN.parse(_rel(directory, path)) or paths.TRAIN_PART.parse(_rel(directory, path)) or {}
    with h5py.File(path, "r") as f:
        attrs = dict(f.attrs)
        count = int(f["seeds"].shape[0]) if "seeds" in f and f["seeds"].shape else None
    raw = attrs.get("diverged")
    if raw is None:
        return None
    record = json.loads(raw.decode() if isinstance(raw, bytes) else str(raw))
    if not isinstance(record, dict):
        raise ValueError(f"attribute diverged is {record!r}, expected {{seed: step}}")
    if not record:
        return None
    seeds = {int(seed): int(step) for seed, step in record.items()}
    return Divergence(path=_rel(directory, path), dataset=str(attrs.get("dataset", where.get("dataset", "?"))),
                      run=str(attrs.get("run", where.get("run", "?"))), width=int(attrs.get("width", where.get("width", 0))),
                      seeds=seeds, all_seeds=count)


def read_claims(path: str) -> Claims:
    """Verdict counts and the open (failed, inconclusive) claims of a claims.tsv. Raises OSError or
    ValueError when it cannot be read."""
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    if rows and "verdict" not in rows[0]:
        raise ValueError("no verdict column")
    if not rows:
        with open(path, encoding="utf-8") as f:
            if "verdict" not in f.readline():
                raise ValueError("empty, or no header with a verdict column")
    counts = {v: 0 for v in VERDICTS}
    for row in rows:
        verdict = row["verdict"]
        if verdict not in counts:
            raise ValueError(f"unknown verdict {verdict!r} (key {row.get('key')})")
        counts[verdict] += 1
    # One entry per claim key (a key can have a row per parameter group or run), failed ones first.
    tally: dict[tuple, int] = {}
    for row in rows:
        if row["verdict"] in ("fails", "inconclusive"):
            key = (row["verdict"] != "fails", row.get("key", "?"), row.get("dataset", "?"), row["verdict"])
            tally[key] = tally.get(key, 0) + 1
    open_claims = [f"{key} ({dataset}): {verdict}" + (f" x{n}" if n > 1 else "")
                   for (_, key, dataset, verdict), n in sorted(tally.items(), key=lambda kv: kv[0][0])]
    return Claims(path=path, counts=counts, open=open_claims)


def collect(directory: str = ".") -> Summary:
    """Everything the summary says, read from the files below `directory`."""
    train = training_files(directory)
    divergences, unreadable = [], []
    try:
        import h5py  # noqa: F401
    except ImportError:
        unreadable = [f"{len(train)} training files (h5py is not installed where Snakemake runs)"] if train else []
        train_readable = []
    else:
        train_readable = train
    for path in train_readable:
        try:
            found = read_divergence(path, directory)
        except (OSError, ValueError, KeyError) as err:
            unreadable.append(f"{_rel(directory, path)} ({type(err).__name__}: {err})")
            continue
        if found:
            divergences.append(found)

    claims, problem = None, ""
    tsv = os.path.join(directory, paths.CLAIMS_TSV.pattern)
    if not os.path.exists(tsv):
        problem = f"not computed ({paths.CLAIMS_TSV.pattern} does not exist"
        problem += ": the run stopped before the claims rule" if train else ""
        problem += ")"
    else:
        try:
            claims = read_claims(tsv)
            claims.path = paths.CLAIMS_MD.pattern if os.path.exists(os.path.join(directory, paths.CLAIMS_MD.pattern)) \
                else paths.CLAIMS_TSV.pattern
            newest = max((os.path.getmtime(p) for p in train), default=0.0)
            claims.stale = os.path.getmtime(tsv) < newest
        except (OSError, ValueError, KeyError) as err:
            problem = f"unreadable ({paths.CLAIMS_TSV.pattern}: {err})"

    figure_dir = os.path.join(directory, paths.FIGURE.pattern.rpartition("/")[0])
    figures = sorted(_rel(directory, p) for p in glob.glob(os.path.join(figure_dir, "*"))
                     if paths.FIGURE.parse(_rel(directory, p)) is not None)
    report = paths.REPORT.pattern if os.path.exists(os.path.join(directory, paths.REPORT.pattern)) else None
    return Summary(directory=directory, claims=claims, claims_problem=problem, divergences=divergences,
                   unreadable=unreadable, training_files=len(train), figures=figures, report=report)


def lines(summary: Summary, *, failed: bool | None = None, log: str | None = None) -> list[str]:
    """The summary as console lines (no colours: Snakemake's log file gets them too). failed:
    True/False at the end of a run that failed/finished, None for the results as they are."""
    head = {True: "the run FAILED", False: "the run finished", None: f"the results in {summary.directory}"}[failed]
    if isinstance(log, (list, tuple)):   # Snakemake 9 hands its handlers a list of log files
        log = ", ".join(map(str, log))
    out = [f"ntkvae: {head}" + (f" (Snakemake's log: {log})" if log else "")]
    c = summary.claims
    if c is None:
        out.append(f"  claims: {summary.claims_problem}")
    else:
        tally = ", ".join(f"{c.counts[v]} {VERDICT_WORDS[v]}" for v in VERDICTS)
        out.append(f"  claims: {tally}; table in {c.path}" + (
            " (older than the newest training file: from an earlier run)" if c.stale else ""))
        if c.open:
            out.append("    open (failed, then inconclusive): " + ", ".join(c.open[:LISTED]) + (
                f" and {len(c.open) - LISTED} more" if len(c.open) > LISTED else ""))
    if summary.divergences:
        out.append(f"  DIVERGED: {summary.diverged_seeds} seed(s) in {len(summary.divergences)} training file(s) "
                   "recorded a divergence (left out of every fit, marked in the figures):")
        out += [f"    {d.text()}" for d in summary.divergences[:LISTED]]
        if len(summary.divergences) > LISTED:
            out.append(f"    and {len(summary.divergences) - LISTED} more (results/claims.md lists them all)")
    else:
        out.append(f"  divergences: none recorded in {summary.training_files} training file(s)")
    if summary.unreadable:
        out.append("  could not check for divergences: " + "; ".join(summary.unreadable[:LISTED]))
    figure_dir = paths.FIGURE.pattern.rpartition("/")[0] + "/"
    pngs = sum(f.endswith(".png") for f in summary.figures)
    pdfs = sum(f.endswith(".pdf") for f in summary.figures)
    out.append(f"  figures: {pdfs} PDF and {pngs} PNG in {figure_dir}" if summary.figures else
               f"  figures: none yet in {figure_dir}")
    out.append(f"  report: {summary.report}" if summary.report else
               f"  report: snakemake --report {paths.REPORT.pattern} builds it")
    return out


def text(directory: str = ".", *, failed: bool | None = None, log: str | None = None) -> str:
    return "\n".join(lines(collect(directory), failed=failed, log=log))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m ntkvae.summary", description=__doc__.split("\n\n")[0])
    p.add_argument("--directory", default=".", help="the workflow's working directory (results/ below it)")
    outcome = p.add_mutually_exclusive_group()
    outcome.add_argument("--failed", dest="failed", action="store_const", const=True,
                         help="say that the run failed (as the onerror handler does)")
    outcome.add_argument("--finished", dest="failed", action="store_const", const=False,
                         help="say that the run finished (as the onsuccess handler does)")
    p.add_argument("--log", help="Snakemake's log file, to name in the first line")
    args = p.parse_args(argv)
    print(text(args.directory, failed=args.failed, log=args.log))
    return 0


if __name__ == "__main__":
    sys.exit(main())
