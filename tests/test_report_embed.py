"""report/workflow.rst shows every figure with Snakemake's embeddedfigure directive, which must put
the image into the report as a data URI (ntkvae.report_embed fixes Snakemake 9's, which does not)."""

from __future__ import annotations

import base64

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from docutils.core import publish_parts  # noqa: E402

from ntkvae import report_embed  # noqa: E402


def test_embeddedfigure_puts_the_png_into_the_page(tmp_path, monkeypatch):
    fig, ax = plt.subplots(figsize=(1, 1))
    ax.plot([0, 1])
    fig.savefig(tmp_path / "f.png")
    plt.close(fig)
    monkeypatch.chdir(tmp_path)   # Snakemake builds the report in the workflow's directory
    assert report_embed.register()
    body = publish_parts(".. embeddedfigure:: f.png\n   :alt: F1\n\n   its caption\n", writer_name="html")["body"]
    uri = body.split('src="', 1)[1].split('"', 1)[0]
    assert uri.startswith("data:image/png;") and "alt=\"F1\"" in body and "its caption" in body
    assert base64.b64decode(uri.split("base64,", 1)[1]) == (tmp_path / "f.png").read_bytes()
