"""The claims table: one row per claim and dataset, its verdict from the data, and the writers.

A row states the claim, the setting it was tested in (the theorem's own setting, or the way VAEs
are really trained), the measured value with an interval over seeds (`results.stats.Estimate`),
the prediction, the tolerance and the reason for it, the regime the run reached and a verdict:
holds (the interval lies inside the tolerance), fails (outside), inconclusive (neither: the seeds
cannot decide, or the claim could only be extrapolated), not evaluated (its inputs are absent,
with the reason). results/claims.md opens with one verdict per theorem.
"""

from __future__ import annotations

import dataclasses
import html
import math
import re

from .. import io, paths

from ..results.stats import FAILS, HOLDS, INCONCLUSIVE, Estimate, decide

NOT_EVALUATED = "not evaluated"
VERDICTS = (HOLDS, FAILS, INCONCLUSIVE, NOT_EVALUATED)
MARK = {HOLDS: "✅ holds", FAILS: "❌ fails", INCONCLUSIVE: "❔ inconclusive", NOT_EVALUATED: "— not evaluated"}

# The theorems (and parts of the paper) the rows belong to, in the order of the summary.
THEOREM_1 = "Theorem 1: linear convergence at the rate of lambda0"
LAZINESS = "Laziness: weights and kernel barely move"
THEOREM_2 = "Theorem 2: the trained VAE is a kernel ridge regression"
WIDTH = "Width requirement"
EXPERIMENTS = "The paper's experiments"
THEOREMS = (THEOREM_1, LAZINESS, THEOREM_2, WIDTH, EXPERIMENTS)

THEOREM_SETTING = "theorem setting"      # noise fixed per example, Wsigma frozen, small n, SGD
TRAINED_AS_VAES = "as VAEs are trained"  # fresh noise every step


@dataclasses.dataclass
class Claim:
    key: str            # stable identifier, e.g. "t1_gap_slope"
    theorem: str        # one of THEOREMS
    setting: str        # THEOREM_SETTING or TRAINED_AS_VAES
    claim: str          # the statement being tested
    dataset: str
    figure: str         # figure file stem that shows it, e.g. f9_min_width_mnist5k
    verdict: str
    measured: str       # the value with its interval, as text
    predicted: str
    tolerance: str
    reason: str = ""    # why this tolerance
    regime: str = ""    # m/n, m/d, eta T/m, beta c eta T, lr/limit of the runs used
    detail: str = ""
    estimate: Estimate | None = None
    from_width: int | None = None   # the smallest width from which the claim holds, where it applies

    COLUMNS = ("key", "theorem", "setting", "claim", "dataset", "figure", "verdict", "measured", "low", "high",
               "interval", "predicted", "tolerance", "reason", "regime", "detail")

    def row(self) -> list[str]:
        est = self.estimate
        cells = dataclasses.asdict(self)
        cells["low"] = "" if est is None or not math.isfinite(est.low) else f"{est.low:.6g}"
        cells["high"] = "" if est is None or not math.isfinite(est.high) else f"{est.high:.6g}"
        cells["interval"] = "" if est is None else est.method
        return [str(cells[c]) for c in self.COLUMNS]


def measured_claim(key, theorem, setting, claim, dataset, figure, estimate: Estimate, band: tuple[float, float], *,
                   predicted: str, tolerance: str, reason: str, regime: str = "", detail: str = "",
                   fmt: str = ".3g", prefix: str = "", suffix: str = "", from_width=None) -> Claim:
    """A row whose verdict is decided by the interval of `estimate` against the band [low, high]."""
    return Claim(key, theorem, setting, claim, dataset, figure, decide(estimate, *band),
                 f"{prefix}{estimate.text(fmt)}{suffix}", predicted, tolerance, reason, regime, detail, estimate,
                 from_width)


def not_evaluated(key, theorem, setting, claim, dataset, figure, why: str) -> Claim:
    return Claim(key, theorem, setting, claim, dataset, figure, NOT_EVALUATED, "-", "-", "-", detail=why)


def verdict(ok: bool) -> str:
    """For claims without an interval (a recorded divergence, a count): holds or fails."""
    return HOLDS if ok else FAILS


def runs_of(runs, dataset: str, names) -> list:
    """The runs of `dataset` named in `names`, by run name and width."""
    names = set(names)
    return sorted((r for r in runs if r.dataset == dataset and r.run in names), key=lambda r: (r.run, r.width))


# ------------------------------------------------------------------ per-theorem summary

def summarize(claims: list[Claim]) -> list[tuple[str, str]]:
    """One line per theorem: reproduced in its own setting or not (from which width), and what
    happens as VAEs are really trained."""
    lines = []
    for theorem in THEOREMS:
        rows = [c for c in claims if c.theorem == theorem]
        if not rows:
            continue
        parts = []
        for setting in (THEOREM_SETTING, TRAINED_AS_VAES):
            these = [c for c in rows if c.setting == setting]
            if not these:
                continue
            count = {v: sum(c.verdict == v for c in these) for v in VERDICTS}
            decided = [c for c in these if c.verdict != NOT_EVALUATED]
            if not decided:
                word = "not evaluated"
            elif count[HOLDS] == len(decided):
                word = "reproduced"
            elif count[FAILS]:
                word = "not reproduced"
            else:
                word = "not shown (inconclusive)"
            widths = [c.from_width for c in these if c.from_width]
            since = f" from width {max(widths)}" if widths and word == "reproduced" else ""
            datasets = sorted({c.dataset for c in these})
            tally = ", ".join(f"{count[v]} {v}" for v in VERDICTS if count[v])
            failing = [f"{c.key} ({c.dataset}: {c.verdict})" for c in these if c.verdict in (FAILS, INCONCLUSIVE)]
            text = f"{setting}: **{word}**{since} on {', '.join(datasets)} ({tally})"
            if failing:
                text += "; open: " + ", ".join(failing[:6]) + (" …" if len(failing) > 6 else "")
            parts.append(text)
        lines.append((theorem, "; ".join(parts)))
    return lines


# ------------------------------------------------------------------ writers

def write_tsv(claims, path) -> None:
    lines = ["\t".join(Claim.COLUMNS)] + ["\t".join(c.row()).replace("\n", " ") for c in claims]
    io.write_text(path, "\n".join(lines) + "\n")


TABLE_HEADER = ("verdict", "claim", "dataset", "setting", "measured [interval]", "predicted", "tolerance", "regime",
                "figure")


# The verdict marks of claims.html: symbols every font has (a browser without an emoji font draws
# MARK's as empty boxes); the row's class colours them.
HTML_MARK = {HOLDS: "✓ holds", FAILS: "✗ fails", INCONCLUSIVE: "? inconclusive", NOT_EVALUATED: "– not evaluated"}


def table_cells(c: Claim, marks: dict = MARK) -> list[str]:
    """The cells of one row of the claims table under TABLE_HEADER (claims.md and claims.html)."""
    return [marks[c.verdict], c.claim, c.dataset, c.setting, c.measured, c.predicted,
            f"{c.tolerance} ({c.reason})" if c.reason else c.tolerance, c.regime, c.figure]


def counts_text(claims, divergences) -> str:
    counts = {v: sum(c.verdict == v for c in claims) for v in VERDICTS}
    return (f"{counts[HOLDS]} hold, {counts[FAILS]} fail, {counts[INCONCLUSIVE]} inconclusive, "
            f"{counts[NOT_EVALUATED]} not evaluated; {len(divergences)} recorded divergence(s).")


EXPLANATION = ("Computed by `python -m ntkvae.claims` from the HDF5 files of this run. A claim holds when the "
               "interval of its measured value (over seeds; the method is in claims.tsv) lies inside its tolerance, "
               "fails when it lies outside, and is inconclusive otherwise. Tolerances and their reasons: "
               "docs/figures.md.")
DIVERGENCE_NOTE = ("Runs that ask to record a divergence (`on_divergence: record`) keep the diverged seeds out of every "
                   "fit; the figures mark them.")


def divergence_lines(divergences) -> list[str]:
    return [f"{d}: run `{r}`, m = {w}, seed {s}, from step {t}" for d, r, w, s, t in divergences]


def write_md(claims, path, divergences=()) -> None:
    lines = ["# Claims table", "", "## Verdict per theorem", ""]
    lines += [f"- **{theorem}** — {text}" for theorem, text in summarize(claims)]
    lines += ["", f"{counts_text(claims, divergences)} {EXPLANATION}", "",
              "| " + " | ".join(TABLE_HEADER) + " |", "|" + "---|" * len(TABLE_HEADER)]
    for c in claims:
        lines.append("| " + " | ".join(str(x).replace("|", "/").replace("\n", " ") for x in table_cells(c)) + " |")
    if divergences:
        lines += ["", "## Recorded divergences", "", DIVERGENCE_NOTE, ""]
        lines += [f"- {line}" for line in divergence_lines(divergences)]
    details = [c for c in claims if c.detail]
    if details:
        lines += ["", "## Details", ""]
        lines += [f"- `{c.key}` ({c.dataset}): {c.detail}" for c in details]
    io.write_text(path, "\n".join(lines) + "\n")


# The HTML rendering goes into the Snakemake report's landing page (report/workflow.rst includes
# it) and is a report item of its own. Styles are scoped to .ntkvae-claims, except the first three
# rules, which lay out the landing page that holds it: Snakemake centres its content pane (which
# clips the top and left of a page longer or wider than the window) and sets the description
# column beside the rule graph to max-w-lg; here the pane scrolls from its top, the description
# takes the width and the rule graph goes below it.
HTML_STYLE = """
.h-screen:has(.ntkvae-claims) { align-items: flex-start; justify-content: flex-start; }
.h-screen:has(.ntkvae-claims) > div { flex-wrap: wrap; }
.prose:has(.ntkvae-claims) { max-width: 80rem; }
.prose .ntkvae-figure img { max-width: 100%; height: auto; margin: 0.5rem 0; background: #fff; }
.ntkvae-claims { font-size: 0.8rem; line-height: 1.3; }
.ntkvae-claims table { border-collapse: collapse; width: 100%; margin: 0.5rem 0 1rem; }
.ntkvae-claims th, .ntkvae-claims td { border-bottom: 1px solid #64748b; padding: 0.2rem 0.4rem; text-align: left;
  vertical-align: top; }
.ntkvae-claims th { position: sticky; top: 0; background: #1e293b; color: #f8fafc; }
.ntkvae-claims td.verdict { white-space: nowrap; font-weight: 600; }
.ntkvae-claims tr.holds td.verdict { color: #4ade80; }
.ntkvae-claims tr.fails td.verdict { color: #f87171; }
.ntkvae-claims tr.inconclusive td.verdict { color: #facc15; }
.ntkvae-claims tr.not-evaluated td.verdict { color: #94a3b8; }
.ntkvae-claims td.measured { font-variant-numeric: tabular-nums; min-width: 9rem; }
.ntkvae-claims td.claim { min-width: 12rem; }
.ntkvae-claims td.regime { min-width: 8rem; }
.ntkvae-claims .reason { color: #94a3b8; font-size: 0.72rem; }
.ntkvae-claims a { color: #7dd3fc; }
.ntkvae-claims summary { cursor: pointer; font-weight: 600; }
"""


def _inline(text: str) -> str:
    """Markdown's **bold** and `code` of the summary texts as HTML (the rest escaped)."""
    out = html.escape(str(text))
    out = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", out)
    return re.sub(r"`(.+?)`", r"<code>\1</code>", out)


def figure_link(stem: str) -> str:
    """A link that opens the figure's entry (its image and caption) in the Snakemake report: the
    javascript target Snakemake itself gives every report item in captions (`<file>_` links)."""
    if not stem or stem == "-":
        return html.escape(stem or "")
    target = paths.FIGURE.pattern.rpartition("/")[0] + f"/{stem}.png"
    return f"<a href=\"javascript:app.showResultInfo('{html.escape(target)}')\">{html.escape(stem)}</a>"


def write_html(claims, path, divergences=()) -> None:
    """claims.html: the per-theorem summary and the claims table (TABLE_HEADER, table_cells), an
    HTML fragment for the report (no <html> wrapper: it is inserted into the report's page)."""
    parts = ['<meta charset="utf-8">', f"<style>{HTML_STYLE}</style>", '<div class="ntkvae-claims">',
             "<h2>Verdict per theorem</h2>", "<ul>"]
    parts += [f"<li><strong>{html.escape(theorem)}</strong> — {_inline(text)}</li>" for theorem, text in summarize(claims)]
    parts += ["</ul>", f"<p>{_inline(counts_text(claims, divergences))} {_inline(EXPLANATION)}</p>",
              '<h2>Claims table</h2>', '<table class="claims">', "<thead><tr>"]
    parts += [f"<th>{html.escape(h)}</th>" for h in TABLE_HEADER]
    parts += ["</tr></thead>", "<tbody>"]
    for c in claims:
        cells = table_cells(c, HTML_MARK)
        rendered = []
        for name, value in zip(TABLE_HEADER, cells):
            if name == "figure":
                rendered.append(f"<td>{figure_link(value)}</td>")
            elif name == "tolerance" and c.reason:
                rendered.append(f"<td>{html.escape(c.tolerance)}<br><span class=\"reason\">({html.escape(c.reason)})</span></td>")
            else:
                css = name.split()[0]
                rendered.append(f'<td class="{css}">{html.escape(str(value))}</td>')
        parts.append(f'<tr class="{c.verdict.replace(" ", "-")}" id="claim-{html.escape(c.key)}-{html.escape(c.dataset)}">'
                     + "".join(rendered) + "</tr>")
    parts += ["</tbody>", "</table>"]
    if divergences:
        parts += ["<h2>Recorded divergences</h2>", f"<p>{_inline(DIVERGENCE_NOTE)}</p>", "<ul>"]
        parts += [f"<li>{_inline(line)}</li>" for line in divergence_lines(divergences)]
        parts += ["</ul>"]
    details = [c for c in claims if c.detail]
    if details:   # folded: the numbers behind the verdicts, one click away
        parts += [f"<details><summary>Details of {len(details)} claims (per-seed values, what was left out)</summary>",
                  "<ul>"]
        parts += [f"<li><code>{html.escape(c.key)}</code> ({html.escape(c.dataset)}): {html.escape(c.detail)}</li>"
                  for c in details]
        parts += ["</ul>", "</details>"]
    parts.append("</div>")
    io.write_text(path, "\n".join(parts) + "\n")
