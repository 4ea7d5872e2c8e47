"""claims.html, the report's rendering of the claims table: the same rows and cells as claims.md
(one function, table.table_cells, owns them), escaped, each verdict marked, each figure linked to
its report entry; and the provenance page is readable text, not JSON."""

from __future__ import annotations

import html.parser
import json

from ntkvae import provenance
from ntkvae.claims import table as T
from ntkvae.results.stats import Estimate


class Cells(html.parser.HTMLParser):
    """The text of every <td> per <tr> of the table with class `claims`, and the links."""

    def __init__(self):
        super().__init__()
        self.rows, self.links, self.classes, self._in_table, self._cell = [], [], [], False, None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table" and "claims" in attrs.get("class", ""):
            self._in_table = True
        elif self._in_table and tag == "tr" and attrs.get("class"):
            self.rows.append([])
            self.classes.append(attrs["class"])
        elif self._in_table and tag == "td":
            self._cell = ""
        elif self._in_table and tag == "br" and self._cell is not None:
            self._cell += " "
        elif tag == "a" and self._in_table:
            self.links.append(attrs["href"])

    def handle_endtag(self, tag):
        if tag == "td" and self._cell is not None:
            self.rows[-1].append(self._cell)
            self._cell = None
        elif tag == "table":
            self._in_table = False

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data


def claims():
    est = Estimate(-0.49, -0.55, -0.41, (-0.5, -0.45, -0.52), "t interval over 3 seeds")
    return [
        T.measured_claim("slope", T.LAZINESS, T.TRAINED_AS_VAES, "relative change of W1 ~ m^-1/2", "digits",
                         "f2_laziness_digits", est, (-0.7, -0.3), predicted="-0.5", tolerance="±0.2",
                         reason="finite-width <b>bias</b>", regime="m/n 0.5–4"),
        T.Claim("gap", T.THEOREM_1, T.THEOREM_SETTING, "gap to the linearized model < 1e-2", "digits",
                "f1_convergence_digits", T.FAILS, "0.3 [0.2, 0.4]", "< 0.01", "0.01"),
        T.not_evaluated("krr", T.THEOREM_2, T.THEOREM_SETTING, "KRR fit", "digits", "f5_krr_digits",
                        "no kernels (rules/kernels.smk absent)"),
    ]


def test_html_table_has_the_rows_and_cells_of_the_markdown_table(tmp_path):
    rows = claims()
    T.write_md(rows, tmp_path / "claims.md", divergences=[("digits", "mse", 64, 1, 30)])
    T.write_html(rows, tmp_path / "claims.html", divergences=[("digits", "mse", 64, 1, 30)])
    md_rows = [line.strip("|").split(" | ") for line in (tmp_path / "claims.md").read_text().splitlines()
               if line.startswith("| ") and not line.startswith("| verdict")]
    parser = Cells()
    text = (tmp_path / "claims.html").read_text()
    parser.feed(text)
    assert [[c.strip() for c in row[1:]] for row in md_rows] == [[c.strip() for c in row[1:]] for row in parser.rows]
    assert [row[0].strip() for row in md_rows] == ["✅ holds", "❌ fails", "— not evaluated"]
    assert [row[0] for row in parser.rows] == ["✓ holds", "✗ fails", "– not evaluated"]   # no emoji font needed
    assert parser.rows[0][4] == "-0.49 [-0.55, -0.41]"
    assert parser.classes == ["holds", "fails", "not-evaluated"]
    assert parser.links[:2] == ["javascript:app.showResultInfo('results/figures/f2_laziness_digits.png')",
                                "javascript:app.showResultInfo('results/figures/f1_convergence_digits.png')"]
    assert "finite-width &lt;b&gt;bias&lt;/b&gt;" in text and "<b>bias" not in text     # escaped
    assert "<h2>Verdict per theorem</h2>" in text and "<strong>Laziness" in text
    assert "digits: run <code>mse</code>, m = 64, seed 1, from step 30" in text
    assert "1 hold, 1 fail, 0 inconclusive, 1 not evaluated; 1 recorded divergence(s)." in text


def test_provenance_page_is_readable_text(tmp_path, monkeypatch):
    training = [{"path": "a.h5", "device": "gpu:NVIDIA H200", "git_commit": "abc", "versions": {"jax": "0.7.0"}},
                {"path": "b.h5", "device": "gpu:NVIDIA H200", "git_commit": "abc", "versions": {"jax": "0.7.0"}}]
    doc = provenance.document({"model": {"widths": [16, 32]}, "datasets": [{"name": "digits"}]}, training)
    page = provenance.render_html(doc)
    assert "gpu:NVIDIA H200 (2 training files)" in page and "<td>jax</td>" in page
    assert "widths:\n  - 16\n  - 32" in page   # the config as YAML, not JSON
    assert '{"' not in page and json.dumps(doc["config"]) not in page
