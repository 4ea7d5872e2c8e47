"""The `embeddedfigure` and `embeddedimage` directives of Snakemake's report captions, working.

Snakemake registers both for captions and the workflow description, to embed an image as a data
URI so that the report stays one self-contained file. In Snakemake 9 (checked on 9.27.1) they
never embed: `EmbeddedFigure(Figure, EmbeddedMixin)` puts the mixin after docutils' Figure, whose
run() wins, and the mixin would set the URI only after the image node is made. The page then
points at the file's path, which a browser cannot find next to the report. `register()`, called
by the workflow (rules/common.smk) in the process that builds the report, re-registers the two
names with the data URI set before docutils builds the node; the report's rst stays Snakemake's.
"""

from __future__ import annotations


def _embedding(base):
    from snakemake.report.common import data_uri_from_file

    class Embedded(base):
        def run(self):
            self.arguments[0] = data_uri_from_file(self.arguments[0].strip())
            return super().run()

    Embedded.__name__ = f"Embedded{base.__name__}"
    return Embedded


def register() -> bool:
    """Replace Snakemake's two directives; False (and nothing changed) without docutils/Snakemake."""
    try:
        from docutils.parsers.rst import directives
        from docutils.parsers.rst.directives.images import Figure, Image
    except ImportError:
        return False
    try:
        directives.register_directive("embeddedimage", _embedding(Image))
        directives.register_directive("embeddedfigure", _embedding(Figure))
    except ImportError:
        return False
    return True
