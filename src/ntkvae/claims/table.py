"""The claims table: one row per claim and dataset, its verdict, and the two writers (TSV, Markdown)."""

from __future__ import annotations

import dataclasses

from .. import io

HOLDS, FAILS, NOT_EVALUATED = "holds", "fails", "not evaluated"


@dataclasses.dataclass
class Claim:
    key: str            # stable identifier, e.g. "weight_change_slope"
    claim: str          # the statement of the paper being tested
    dataset: str
    figure: str         # figure file stem that shows it, e.g. f2_laziness_digits
    measured: str
    predicted: str
    tolerance: str
    verdict: str
    detail: str = ""

    COLUMNS = ("key", "claim", "dataset", "figure", "measured", "predicted", "tolerance", "verdict", "detail")

    def row(self) -> list[str]:
        return [str(getattr(self, c)) for c in self.COLUMNS]


def verdict(ok: bool) -> str:
    return HOLDS if ok else FAILS


def diverged(key: str, statement: str, dataset: str, figure: str, note: str, measured: str = "diverged") -> Claim:
    """A claim whose runs diverged where it needs them: it fails, and says so (training at these
    settings did not converge: the learning rate is too large for them)."""
    return Claim(key, statement, dataset, figure, measured, "-", "-", FAILS, note)


def judged(ok: bool, note: str) -> str:
    """The verdict of a claim evaluated on the seeds that did not diverge: `note` (a divergence
    note) makes it fail whatever the rest shows, since the claim was not tested as configured."""
    return FAILS if note else verdict(ok)


def with_note(detail: str, note: str) -> str:
    """`detail` followed by a divergence note (ntkvae.results.runs.divergence_note), if any."""
    return f"{detail}; {note}" if note and detail else (note or detail)


def runs_of(runs, dataset: str, names) -> list:
    """The runs of `dataset` named in `names`, by run name and width."""
    names = set(names)
    return sorted((r for r in runs if r.dataset == dataset and r.run in names), key=lambda r: (r.run, r.width))


def write_tsv(claims, path) -> None:
    lines = ["\t".join(Claim.COLUMNS)] + ["\t".join(c.row()).replace("\n", " ") for c in claims]
    io.write_text(path, "\n".join(lines) + "\n")


def write_md(claims, path) -> None:
    mark = {HOLDS: "✅ holds", FAILS: "❌ fails", NOT_EVALUATED: "— not evaluated"}
    counts = {v: sum(c.verdict == v for c in claims) for v in (HOLDS, FAILS, NOT_EVALUATED)}
    lines = [
        "# Claims table",
        "",
        f"{counts[HOLDS]} hold, {counts[FAILS]} fail, {counts[NOT_EVALUATED]} not evaluated. "
        "Computed by `python -m ntkvae.claims` from the HDF5 files of this run; tolerances from the "
        "config (`figures.claims`), justified in docs/figures.md.",
        "",
        "| claim | dataset | measured | predicted | tolerance | verdict | figure | detail |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for c in claims:
        cells = [c.claim, c.dataset, c.measured, c.predicted, c.tolerance, mark[c.verdict], c.figure, c.detail]
        lines.append("| " + " | ".join(str(x).replace("|", "/") for x in cells) + " |")
    io.write_text(path, "\n".join(lines) + "\n")
