"""Legibility checks on a drawn matplotlib figure, from the artists' extents in display space.

Each check returns a list of problems (empty: the figure passes), so that a test names every
problem at once. Used by tests/test_figures_legible.py on each figure module's real output.

- legends_off_data: no legend box meets a data artist (line, marker, bar, band, image) of any axes;
- legends_off_text: no legend box meets a text outside it (titles, labels, tick labels, notes);
- texts_apart: no two texts of the figure overlap (titles of neighbouring panels, tick labels);
- fonts: every text at least style.MIN_FONT_PT at the printed size;
- size: at most style.FULL_WIDTH_IN wide as saved (bbox tight), every plotting panel at least
  style.MIN_PANEL_IN wide;
- log_ticks: every log axis has two or more labelled major ticks in view, none overlapping;
- styles_explained: every dashed, dotted or dash-dot line and every marker style of the
  excluded/diverged mark has a legend entry of that style in the figure.
"""

from __future__ import annotations

import numpy as np
from matplotlib.collections import Collection, LineCollection, PathCollection
from matplotlib.image import AxesImage
from matplotlib.legend import Legend
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.text import Text
from matplotlib.transforms import Bbox

from ntkvae.figures import style

NON_SOLID = ("--", ":", "-.")


def renderer_of(fig):
    """Draw the figure (on an Agg canvas: pyplot may have closed it) and return the renderer."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return canvas.get_renderer()


def legends(fig) -> list[Legend]:
    found = [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]
    return found + list(fig.legends)


# ---------------------------------------------------------------- geometry in display space

def _segment_hits_box(p, q, box: Bbox) -> bool:
    """Whether the segment p-q meets the box (Liang-Barsky clipping)."""
    (x0, y0), (x1, y1) = p, q
    dx, dy = x1 - x0, y1 - y0
    t0, t1 = 0.0, 1.0
    for edge_p, edge_q in ((-dx, x0 - box.x0), (dx, box.x1 - x0), (-dy, y0 - box.y0), (dy, box.y1 - y0)):
        if edge_p == 0:
            if edge_q < 0:
                return False
            continue
        t = edge_q / edge_p
        if edge_p < 0:
            t0 = max(t0, t)
        else:
            t1 = min(t1, t)
        if t0 > t1:
            return False
    return True


def _polyline_hits(points, box: Bbox) -> bool:
    points = np.asarray(points, float)
    for p, q in zip(points[:-1], points[1:]):
        if np.all(np.isfinite(p)) and np.all(np.isfinite(q)) and _segment_hits_box(p, q, box):
            return True
    return any(np.all(np.isfinite(p)) and box.contains(*p) for p in points)


def _polygon_hits(path_display, box: Bbox) -> bool:
    vertices = path_display.vertices
    if _polyline_hits(np.vstack([vertices, vertices[:1]]), box):
        return True
    corners = [(box.x0, box.y0), (box.x1, box.y1), (box.x0, box.y1), (box.x1, box.y0),
               ((box.x0 + box.x1) / 2, (box.y0 + box.y1) / 2)]
    return bool(np.any(path_display.contains_points(corners)))


def _clip(artist, box: Bbox) -> Bbox | None:
    """The part of `box` where the artist can be drawn (its clip box), or None."""
    if not artist.get_clip_on() or artist.get_clip_box() is None:
        return box
    clip = Bbox.intersection(box, artist.get_clip_box())
    return clip


def _marker_boxes(line: Line2D, points) -> list[Bbox]:
    half = line.get_markersize() * line.figure.dpi / 72 / 2 + line.get_markeredgewidth() * line.figure.dpi / 72
    return [Bbox.from_extents(x - half, y - half, x + half, y + half) for x, y in points if np.isfinite(x + y)]


def artist_hits(artist, box: Bbox, renderer) -> bool:
    """Whether a data artist drawn in an axes meets the display-space box."""
    box = _clip(artist, box)
    if box is None or box.width <= 0 or box.height <= 0:
        return False
    if isinstance(artist, Line2D):
        xy = artist.get_transform().transform(np.column_stack(artist.get_data()).astype(float))
        if artist.get_linestyle() not in ("None", "none", "", " ") and _polyline_hits(xy, box):
            return True
        if artist.get_marker() not in (None, "None", "none", "", " "):
            return any(b.overlaps(box) for b in _marker_boxes(artist, xy))
        return False
    if isinstance(artist, AxesImage):
        return artist.get_window_extent(renderer).overlaps(box)
    if isinstance(artist, Patch):
        path = artist.get_transform().transform_path(artist.get_path())
        return _polygon_hits(path, box)
    if isinstance(artist, PathCollection) and len(artist.get_offsets()):
        centres = artist.get_offset_transform().transform(np.asarray(artist.get_offsets(), float))
        half = np.sqrt(np.max(artist.get_sizes()) if len(artist.get_sizes()) else 36) * artist.figure.dpi / 72 / 2
        return any(Bbox.from_extents(x - half, y - half, x + half, y + half).overlaps(box) for x, y in centres)
    if isinstance(artist, LineCollection):
        transform = artist.get_transform()
        return any(_polyline_hits(transform.transform(np.asarray(seg, float)), box) for seg in artist.get_segments())
    if isinstance(artist, Collection):
        transform = artist.get_transform()
        return any(_polygon_hits(transform.transform_path(path), box) for path in artist.get_paths())
    return False


def data_artists(ax):
    """The artists of an axes that draw data (not the frame, the axis, texts or the legend)."""
    children = list(ax.lines) + list(ax.collections) + list(ax.patches) + list(ax.images)
    return [a for a in children if a.get_visible()]


# ---------------------------------------------------------------- checks

def legends_off_data(fig, renderer) -> list[str]:
    problems = []
    for legend in legends(fig):
        box = legend.get_window_extent(renderer)
        for ax in fig.axes:
            for artist in data_artists(ax):
                if artist_hits(artist, box, renderer):
                    problems.append(f"legend {_legend_name(legend)!r} covers {type(artist).__name__} "
                                    f"{artist.get_label()!r} of panel {_axes_name(ax)!r}")
    return problems


def tick_labels(fig) -> dict:
    """{tick label Text: (axes, "x" or "y")} of every axes (a tick label's own `axes` is not set)."""
    found = {}
    for ax in fig.axes:
        for which, axis in (("x", ax.xaxis), ("y", ax.yaxis)):
            for t in axis.get_ticklabels(which="both"):
                found[t] = (ax, which)
    return found


def _tick_in_view(t, ax, which) -> bool:
    """Whether a tick label's tick lies inside the view (matplotlib keeps labels of ticks outside it)."""
    value = t.get_position()[0 if which == "x" else 1]
    low, high = sorted(ax.get_xlim() if which == "x" else ax.get_ylim())
    span = (high - low) * 1e-9
    return low - span <= value <= high + span


def visible_texts(fig, renderer) -> list[Text]:
    ticks = tick_labels(fig)
    texts = []
    for t in fig.findobj(Text):
        if not t.get_visible() or not t.get_text().strip():
            continue
        if t in ticks:
            ax, which = ticks[t]
            if not ax.get_visible() or not ax.axison or not _tick_in_view(t, ax, which):
                continue
        elif getattr(t, "axes", None) is not None and not t.axes.get_visible():
            continue
        ext = t.get_window_extent(renderer)
        if ext.width > 0 and ext.height > 0:
            texts.append(t)
    return texts


def _owner_legend(t, fig):
    for legend in legends(fig):
        if t in legend.findobj(Text):
            return legend
    return None


def legends_off_text(fig, renderer) -> list[str]:
    problems = []
    texts = visible_texts(fig, renderer)
    for legend in legends(fig):
        box = legend.get_window_extent(renderer)
        own = set(legend.findobj(Text))
        for t in texts:
            if t not in own and t.get_window_extent(renderer).overlaps(box):
                problems.append(f"legend {_legend_name(legend)!r} covers the text {t.get_text()!r}")
    return problems


def texts_apart(fig, renderer) -> list[str]:
    """No two texts overlap (a legend lays out its own texts: those are left to matplotlib)."""
    texts = [t for t in visible_texts(fig, renderer) if _owner_legend(t, fig) is None]
    boxes = [t.get_window_extent(renderer) for t in texts]
    problems = []
    for i in range(len(texts)):
        for j in range(i + 1, len(texts)):
            a, b = boxes[i], boxes[j]
            # Touching within a pixel is not an overlap.
            if min(a.x1, b.x1) - max(a.x0, b.x0) > 1 and min(a.y1, b.y1) - max(a.y0, b.y0) > 1:
                problems.append(f"texts overlap: {texts[i].get_text()!r} and {texts[j].get_text()!r}")
    return problems


def fonts(fig, renderer, minimum: float = style.MIN_FONT_PT) -> list[str]:
    return [f"text {t.get_text()[:40]!r} at {t.get_fontsize():.3g} pt < {minimum:g} pt"
            for t in visible_texts(fig, renderer) if t.get_fontsize() < minimum - 1e-9]


def size(fig, renderer) -> list[str]:
    problems = []
    tight = fig.get_tightbbox(renderer)
    if tight.width > style.FULL_WIDTH_IN + 0.15:
        problems.append(f"saved {tight.width:.2f} in wide > {style.FULL_WIDTH_IN} in: it would be shrunk in print")
    for ax in fig.axes:
        if not ax.axison or not data_artists(ax) or ax.images:
            continue
        width = ax.get_position().width * fig.get_figwidth()
        if width < style.MIN_PANEL_IN - 1e-6:
            problems.append(f"panel {_axes_name(ax)!r} is {width:.2f} in wide < {style.MIN_PANEL_IN} in")
    return problems


def log_ticks(fig, renderer) -> list[str]:
    problems = []
    for ax in fig.axes:
        if not ax.axison:
            continue
        for which, axis, labels in (("x", ax.xaxis, ax.get_xticklabels()), ("y", ax.yaxis, ax.get_yticklabels())):
            if axis.get_scale() != "log":
                continue
            shown = [t for t in labels if t.get_visible() and t.get_text().strip() and _tick_in_view(t, ax, which)]
            if len(shown) < 2:
                problems.append(f"panel {_axes_name(ax)!r}: log {which} axis with {len(shown)} labelled tick(s)")
            boxes = [t.get_window_extent(renderer) for t in shown]
            for i in range(len(boxes) - 1):
                if boxes[i].overlaps(boxes[i + 1]):
                    problems.append(f"panel {_axes_name(ax)!r}: {which} tick labels {shown[i].get_text()!r} and "
                                    f"{shown[i + 1].get_text()!r} overlap")
    return problems


def _line_has_data(line: Line2D) -> bool:
    x, y = (np.asarray(v, float) for v in line.get_data())
    return x.size > 0 and bool(np.any(np.isfinite(x) & np.isfinite(y)))


def _is_excluded_mark(line: Line2D) -> bool:
    return line.get_marker() == style.MARK_EXCLUDED["marker"] and line.get_linestyle() in ("None", "none", "")


def styles_explained(fig, renderer) -> list[str]:
    """Every non-solid line style and the excluded mark drawn with data has a legend entry of that style."""
    in_legends = [line for legend in legends(fig) for line in legend.findobj(Line2D)]
    legend_styles = {line.get_linestyle() for line in in_legends if line.get_linestyle() in NON_SOLID}
    legend_marks = any(_is_excluded_mark(line) for line in in_legends)
    problems = []
    for ax in fig.axes:
        for line in ax.lines:
            if not line.get_visible() or not _line_has_data(line):
                continue
            ls = line.get_linestyle()
            if ls in NON_SOLID and ls not in legend_styles:
                problems.append(f"panel {_axes_name(ax)!r}: a {ls!r} line ({line.get_label()!r}) has no legend entry")
            if ls in NON_SOLID and ls not in style.LINESTYLES.values():
                problems.append(f"panel {_axes_name(ax)!r}: line style {ls!r} is not one of style.LINESTYLES")
            if _is_excluded_mark(line) and not legend_marks:
                problems.append(f"panel {_axes_name(ax)!r}: excluded/diverged marks without a legend entry")
    return sorted(set(problems))


def excluded_marks(fig) -> int:
    """How many excluded/diverged marks (style.MARK_EXCLUDED) are drawn with data."""
    return sum(len(np.atleast_1d(line.get_xdata())) for ax in fig.axes for line in ax.lines
               if _is_excluded_mark(line) and _line_has_data(line))


ALL = (legends_off_data, legends_off_text, texts_apart, fonts, size, log_ticks, styles_explained)


def _axes_name(ax) -> str:
    return ax.get_title() or ax.get_ylabel() or f"axes {ax.get_position().bounds}"


def _legend_name(legend) -> str:
    texts = [t.get_text() for t in legend.get_texts()]
    return texts[0] if texts else "?"
