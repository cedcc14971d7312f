"""Charts drawn on the server as SVG strings (pure: no Django, no JavaScript, nothing to download).

Every function returns a complete ``<svg>`` element sized by its ``viewBox``,
so CSS can scale it to the container. Text is escaped here; callers mark the
result safe. Colours come from a small fixed palette so the pages look alike.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape

INK = "#1e293b"
MUTED = "#64748b"
GRID = "#e2e8f0"
BLUE = "#2563eb"
GREEN = "#16a34a"
AMBER = "#d97706"
RED = "#dc2626"
ORANGE = "#ea580c"

# A light-to-dark blue ramp for probabilities; low values stay visible on white.
_RAMP = ((0.0, (241, 245, 249)), (0.5, (96, 165, 250)), (0.8, (37, 99, 235)), (1.0, (30, 58, 138)))


def _number(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".") if math.isfinite(value) else "0"


def ramp_colour(value: float) -> str:
    """Hex colour for a probability in [0, 1] on the blue ramp."""
    value = min(max(float(value), 0.0), 1.0)
    for (low, low_rgb), (high, high_rgb) in zip(_RAMP, _RAMP[1:]):
        if value <= high:
            share = (value - low) / (high - low) if high > low else 0.0
            rgb = [round(a + (b - a) * share) for a, b in zip(low_rgb, high_rgb)]
            return "#" + "".join(f"{c:02x}" for c in rgb)
    return "#" + "".join(f"{c:02x}" for c in _RAMP[-1][1])


def _open(width: float, height: float, label: str, css_class: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart {css_class}" viewBox="0 0 {_number(width)} '
        f'{_number(height)}" width="{_number(width)}" height="{_number(height)}" role="img" '
        f'aria-label="{escape(label)}"><title>{escape(label)}</title>'
    )


def _text(
    x: float,
    y: float,
    text: str,
    *,
    size: int = 11,
    anchor: str = "start",
    fill: str = MUTED,
    weight: str = "normal",
    extra: str = "",
) -> str:
    return (
        f'<text x="{_number(x)}" y="{_number(y)}" font-size="{size}" text-anchor="{anchor}" fill="{fill}" '
        f'font-weight="{weight}"{extra}>{escape(text)}</text>'
    )


def _nice_max(value: float, ticks: int = 4) -> float:
    """A round axis top: ``ticks`` equal whole-number steps (1 to 8 times a power of ten) reaching ``value``."""
    if value <= 0:
        return float(ticks)
    raw = value / ticks
    power = 10 ** math.floor(math.log10(raw))
    for step in (1, 2, 3, 4, 5, 6, 8, 10):
        if raw <= step * power:
            return max(step * power, 1.0) * ticks
    return 10 * power * ticks


def bar_chart(
    labels: Sequence[str],
    totals: Sequence[float],
    highlighted: Sequence[float] | None = None,
    *,
    label: str,
    highlight_name: str = "correct",
    rest_name: str = "wrong",
    width: int = 1100,
    height: int = 240,
) -> str:
    """Vertical bars, one per label; ``highlighted`` (<= total) is drawn as the lower part of each bar.

    ``labels``, ``totals`` and ``highlighted`` have the same length (one per
    bucket, oldest first). Only a few labels are written under the axis.
    """
    left, right, top, bottom = 48, 12, 14, 34
    plot_width, plot_height = width - left - right, height - top - bottom
    count = len(totals)
    parts = [_open(width, height, label, "bar-chart")]
    if not count:
        parts.append(_text(width / 2, height / 2, "no data yet", anchor="middle"))
        return "".join(parts) + "</svg>"
    top_value = _nice_max(max(totals))
    for tick in range(5):
        value = top_value * tick / 4
        y = top + plot_height - plot_height * tick / 4
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{_number(y)}" y2="{_number(y)}" stroke="{GRID}"/>')
        parts.append(_text(left - 6, y + 4, f"{value:,.0f}", anchor="end"))
    slot = plot_width / count
    bar = max(slot * 0.78, 1.0)
    for index, total in enumerate(totals):
        x = left + index * slot + (slot - bar) / 2
        full = plot_height * total / top_value
        lower = plot_height * (highlighted[index] if highlighted is not None else total) / top_value
        tip = f"{labels[index]}: {total:,.0f} answers"
        if highlighted is not None:
            tip += f", {highlighted[index]:,.0f} {highlight_name}"
        parts.append(f"<g><title>{escape(tip)}</title>")
        parts.append(
            f'<rect x="{_number(x)}" y="{_number(top + plot_height - full)}" width="{_number(bar)}" '
            f'height="{_number(full - lower)}" fill="#cbd5e1"/>'
        )
        parts.append(
            f'<rect x="{_number(x)}" y="{_number(top + plot_height - lower)}" width="{_number(bar)}" '
            f'height="{_number(lower)}" fill="{BLUE}"/></g>'
        )
    every = max(1, math.ceil(count / 8))
    for index in range(0, count, every):
        parts.append(_text(left + (index + 0.5) * slot, height - bottom + 16, labels[index], anchor="middle"))
    if highlighted is not None:
        legend_x = width - right - 170
        parts.append(f'<rect x="{legend_x}" y="2" width="10" height="10" fill="{BLUE}"/>')
        parts.append(_text(legend_x + 14, 11, highlight_name))
        parts.append(f'<rect x="{legend_x + 80}" y="2" width="10" height="10" fill="#cbd5e1"/>')
        parts.append(_text(legend_x + 94, 11, rest_name))
    return "".join(parts) + "</svg>"


def heatmap(
    row_labels: Sequence[str],
    column_labels: Sequence[str],
    values: Sequence[Sequence[float | None]],
    *,
    label: str,
    column_titles: Sequence[str] | None = None,
    cell: int = 22,
) -> str:
    """A grid of probabilities: ``values`` is (rows, columns), None where nothing is known.

    Column labels are written at 45 degrees above the grid; hovering a cell
    names its row, column and value.
    """
    column_titles = column_titles or column_labels
    left = 8 + 6.5 * max((len(text) for text in row_labels), default=4)
    top = 8 + 5.2 * max((len(text) for text in column_labels), default=4)
    width = left + cell * len(column_labels) + 60
    height = top + cell * len(row_labels) + 34
    parts = [_open(width, height, label, "heatmap")]
    for column, text in enumerate(column_labels):
        x = left + column * cell + cell / 2
        parts.append(
            _text(x, top - 6, text, size=10, extra=f' transform="rotate(-45 {_number(x)} {_number(top - 6)})"')
        )
    for row, text in enumerate(row_labels):
        y = top + row * cell
        parts.append(_text(left - 6, y + cell * 0.7, text, size=10, anchor="end"))
        for column, value in enumerate(values[row]):
            x = left + column * cell
            if value is None:
                fill, shown = "#ffffff", "no estimate"
            else:
                fill, shown = ramp_colour(value), f"P(known) = {value:.2f}"
            parts.append(
                f'<rect x="{_number(x)}" y="{_number(y)}" width="{cell - 1}" height="{cell - 1}" '
                f'fill="{fill}" stroke="{GRID}" stroke-width="0.5"><title>{escape(text)} · '
                f"{escape(column_titles[column])}: {shown}</title></rect>"
            )
    legend_y = top + cell * len(row_labels) + 12
    for step in range(11):
        parts.append(
            f'<rect x="{_number(left + step * 14)}" y="{_number(legend_y)}" width="14" height="10" '
            f'fill="{ramp_colour(step / 10)}"/>'
        )
    parts.append(_text(left - 4, legend_y + 9, "0", size=10, anchor="end"))
    parts.append(_text(left + 11 * 14 + 4, legend_y + 9, "1  P(known)", size=10))
    return "".join(parts) + "</svg>"


def curve(
    points: Sequence[tuple[int, float, int]], *, label: str, width: int = 200, height: int = 110, max_x: int = 10
) -> str:
    """A small learning curve: error rate (0..1) against attempt number 1..``max_x``.

    ``points`` are (attempt, error rate, answers); the dots' size grows with
    the number of answers behind them.
    """
    left, right, top, bottom = 28, 8, 8, 20
    plot_width, plot_height = width - left - right, height - top - bottom
    parts = [_open(width, height, label, "curve")]
    for tick in (0.0, 0.5, 1.0):
        y = top + plot_height * (1 - tick)
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{_number(y)}" y2="{_number(y)}" stroke="{GRID}"/>')
        parts.append(_text(left - 4, y + 3, f"{tick:g}", size=9, anchor="end"))
    for tick in (1, max_x // 2, max_x):
        x = left + plot_width * (tick - 1) / max(max_x - 1, 1)
        parts.append(_text(x, height - 6, str(tick), size=9, anchor="middle"))
    if not points:
        parts.append(_text(left + plot_width / 2, top + plot_height / 2, "no answers", size=10, anchor="middle"))
        return "".join(parts) + "</svg>"
    most = max(count for _, _, count in points)
    coordinates = [
        (left + plot_width * (attempt - 1) / max(max_x - 1, 1), top + plot_height * (1 - error), count, attempt, error)
        for attempt, error, count in points
    ]
    path = " ".join(
        f"{'M' if index == 0 else 'L'}{_number(x)},{_number(y)}" for index, (x, y, *_) in enumerate(coordinates)
    )
    parts.append(f'<path d="{path}" fill="none" stroke="{RED}" stroke-width="1.8"/>')
    for x, y, count, attempt, error in coordinates:
        radius = 1.5 + 2.5 * math.sqrt(count / most)
        parts.append(
            f'<circle cx="{_number(x)}" cy="{_number(y)}" r="{_number(radius)}" fill="{RED}">'
            f"<title>attempt {attempt}: {error:.0%} wrong of {count} answers</title></circle>"
        )
    return "".join(parts) + "</svg>"


def mastery_line(
    values: Sequence[float], *, label: str, width: int = 560, height: int = 160, threshold: float | None = None
) -> str:
    """A learner's mean P(known) (0..1) after each answer, oldest left; a dashed line at ``threshold``."""
    left, right, top, bottom = 34, 10, 10, 22
    plot_width, plot_height = width - left - right, height - top - bottom
    parts = [_open(width, height, label, "mastery-line")]
    for tick in (0.0, 0.5, 1.0):
        y = top + plot_height * (1 - tick)
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{_number(y)}" y2="{_number(y)}" stroke="{GRID}"/>')
        parts.append(_text(left - 4, y + 3, f"{tick:.0%}", size=9, anchor="end"))
    if threshold is not None:
        y = top + plot_height * (1 - threshold)
        parts.append(
            f'<line x1="{left}" x2="{width - right}" y1="{_number(y)}" y2="{_number(y)}" '
            f'stroke="{GREEN}" stroke-dasharray="4 3"><title>mastery threshold {threshold:.0%}</title></line>'
        )
    if not values:
        parts.append(_text(left + plot_width / 2, top + plot_height / 2, "no answers yet", size=10, anchor="middle"))
        return "".join(parts) + "</svg>"
    step = plot_width / max(len(values) - 1, 1)
    path = " ".join(
        f"{'M' if index == 0 else 'L'}{_number(left + index * step)},"
        f"{_number(top + plot_height * (1 - min(max(value, 0.0), 1.0)))}"
        for index, value in enumerate(values)
    )
    parts.append(f'<path d="{path}" fill="none" stroke="{BLUE}" stroke-width="1.8"/>')
    parts.append(_text(left, height - 6, "first answer", size=9))
    parts.append(_text(width - right, height - 6, f"now ({values[-1]:.0%})", size=9, anchor="end"))
    return "".join(parts) + "</svg>"


@dataclass(frozen=True)
class GraphEdge:
    """``source`` is a prerequisite of ``target``; ``origin`` is authored, learned or both."""

    source: str
    target: str
    origin: str
    weight: float = 1.0


@dataclass
class Layout:
    """Where the skills go: ``rows`` of skills by depth, each skill's box corner ``position`` (x, y), and the
    ``bends``: for an edge that spans several layers, the x of its path in each layer it crosses."""

    rows: list[list[str]]
    position: dict[str, tuple[float, float]]
    bends: dict[tuple[str, str], list[float]]
    width: float
    height: float


def layout(
    skills: Sequence[str],
    edges: Sequence[tuple[str, str]],
    *,
    node_width: float = 150,
    node_height: float = 46,
    gap_x: float = 18,
    gap_y: float = 46,
    top: float = 0,
    margin: float = 14,
    sweeps: int = 8,
) -> Layout:
    """A layered drawing of an acyclic graph (Sugiyama style).

    Each skill sits one layer below its deepest prerequisite (longest path).
    An edge spanning several layers gets a narrow virtual node in each layer
    it crosses, so it runs between boxes instead of through them. The order
    inside the layers comes from alternating down and up sweeps that move each
    node to the mean x of its neighbours (barycentre heuristic); the ordering
    with the shortest total horizontal edge length wins.
    """
    parents: dict[str, list[str]] = {skill: [] for skill in skills}
    children: dict[str, list[str]] = {skill: [] for skill in skills}
    for source, target in edges:
        parents[target].append(source)
        children[source].append(target)
    depth: dict[str, int] = {}
    pending = {skill: len(parents[skill]) for skill in skills}
    queue = [skill for skill in skills if pending[skill] == 0]
    while queue:
        skill = queue.pop(0)
        depth[skill] = max((depth[parent] + 1 for parent in parents[skill]), default=0)
        for child in children[skill]:
            pending[child] -= 1
            if pending[child] == 0:
                queue.append(child)
    for skill in skills:  # only reached if a cycle slipped through: keep every skill visible
        depth.setdefault(skill, 0)
    rows: list[list[str]] = [[] for _ in range(max(depth.values(), default=-1) + 1)]
    for skill in skills:
        rows[depth[skill]].append(skill)

    # Virtual nodes: "\0source\0target\0layer" cannot clash with a skill id.
    up: dict[str, list[str]] = {skill: [] for skill in skills}
    down: dict[str, list[str]] = {skill: [] for skill in skills}
    chains: dict[tuple[str, str], list[str]] = {}
    for source, target in edges:
        chain = [f"\0{source}\0{target}\0{layer}" for layer in range(depth[source] + 1, depth[target])]
        chains[source, target] = chain
        path = [source, *chain, target]
        for node in chain:
            up[node], down[node] = [], []
        for upper, lower in zip(path, path[1:]):
            down[upper].append(lower)
            up[lower].append(upper)
        for layer, node in zip(range(depth[source] + 1, depth[target]), chain):
            rows[layer].append(node)
    virtual_width = 12.0

    def size(node: str) -> float:
        return virtual_width if node.startswith("\0") else node_width

    widest = max((sum(size(node) for node in row) + gap_x * (len(row) - 1) for row in rows), default=node_width)
    width = widest + 2 * margin

    def place() -> dict[str, float]:
        centre: dict[str, float] = {}
        for row in rows:
            x = (width - sum(size(node) for node in row) - gap_x * (len(row) - 1)) / 2
            for node in row:
                centre[node] = x + size(node) / 2
                x += size(node) + gap_x
        return centre

    def length(centre: dict[str, float]) -> float:
        return sum(abs(centre[upper] - centre[lower]) for upper, lowers in down.items() for lower in lowers)

    centre = place()
    best = (length(centre), [list(row) for row in rows])
    for sweep in range(sweeps):
        downward = sweep % 2 == 0
        neighbours = up if downward else down
        for index in range(1, len(rows)) if downward else range(len(rows) - 2, -1, -1):
            centre = place()

            def key(
                node: str, centre: dict[str, float] = centre, neighbours: dict[str, list[str]] = neighbours
            ) -> float:
                near = [centre[other] for other in neighbours[node]]
                return sum(near) / len(near) if near else centre[node]

            rows[index].sort(key=key)
        score = length(place())
        if score < best[0]:
            best = (score, [list(row) for row in rows])
    rows = best[1]
    centre = place()
    position = {
        node: (centre[node] - node_width / 2, top + margin + index * (node_height + gap_y))
        for index, row in enumerate(rows)
        for node in row
        if not node.startswith("\0")
    }
    height = top + 2 * margin + len(rows) * node_height + max(len(rows) - 1, 0) * gap_y
    return Layout(
        rows=[[node for node in row if not node.startswith("\0")] for row in rows],
        position=position,
        bends={pair: [centre[node] for node in chain] for pair, chain in chains.items() if chain},
        width=width,
        height=height,
    )


def layers(skills: Sequence[str], edges: Sequence[tuple[str, str]]) -> list[list[str]]:
    """Skills in layers, prerequisites first (see ``layout``)."""
    return layout(skills, edges).rows


def _wrap(text: str, limit: int) -> list[str]:
    words, lines, line = text.split(), [], ""
    for word in words:
        if line and len(line) + 1 + len(word) > limit:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    if line:
        lines.append(line)
    if len(lines) > 2:
        lines = [lines[0], (lines[1] + " " + " ".join(lines[2:]))[: limit - 1] + "…"]
    return lines or [""]


EDGE_STYLE = {
    "authored": (MUTED, "", "authored prerequisite"),
    "learned": (ORANGE, ' stroke-dasharray="5 4"', "learned from data"),
    "both": (GREEN, "", "authored and also learned"),
}


def prerequisite_graph(
    skills: Sequence[str],
    names: Mapping[str, str],
    edges: Sequence[GraphEdge],
    layout_edges: Sequence[tuple[str, str]],
    *,
    label: str,
    fills: Mapping[str, str] | None = None,
    captions: Mapping[str, str] | None = None,
    legend: bool = True,
    node_width: int = 150,
) -> str:
    """The skills as boxes in layers (prerequisites above), edges as curves from bottom to top.

    ``layout_edges`` (acyclic) place the skills; ``edges`` are drawn, styled
    by origin (authored: solid grey, learned: dashed orange, both: green), a
    learned edge's opacity following its weight. ``fills`` colours nodes
    (default white); ``captions`` adds a second small line under a node's name.
    """
    fills = fills or {}
    captions = captions or {}
    node_height, gap_y, margin = 46, 46, 14
    legend_height = 26 if legend else 0
    placed = layout(
        skills,
        layout_edges,
        node_width=node_width,
        node_height=node_height,
        gap_y=gap_y,
        top=legend_height,
        margin=margin,
    )
    position, width, height = placed.position, placed.width, placed.height
    parts = [_open(width, height, label, "graph")]
    parts.append(
        "<defs>"
        + "".join(
            f'<marker id="arrow-{origin}" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
            f'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="{colour}"/></marker>'
            for origin, (colour, _, _) in EDGE_STYLE.items()
        )
        + "</defs>"
    )
    if legend:
        x: float = margin
        for colour, dash, text in EDGE_STYLE.values():
            parts.append(
                f'<line x1="{x}" x2="{x + 26}" y1="{margin + 2}" y2="{margin + 2}" stroke="{colour}" '
                f'stroke-width="2"{dash}/>'
            )
            parts.append(_text(x + 32, margin + 6, text, size=11))
            x += 42 + 6.2 * len(text)
    for edge in edges:
        if edge.source not in position or edge.target not in position:
            continue
        colour, dash, text = EDGE_STYLE.get(edge.origin, EDGE_STYLE["authored"])
        sx, sy = position[edge.source]
        tx, ty = position[edge.target]
        x1, y1 = sx + node_width / 2, sy + node_height
        x2, y2 = tx + node_width / 2, ty
        if y2 <= y1:  # drawn against the layering (a learned edge that conflicts): route around the side
            x1, y1, x2, y2 = sx + node_width, sy + node_height / 2, tx + node_width, ty + node_height / 2
            bend = 40 + abs(y2 - y1) / 4
            d = (
                f"M{_number(x1)},{_number(y1)} C{_number(x1 + bend)},{_number(y1)} "
                f"{_number(x2 + bend)},{_number(y2)} {_number(x2)},{_number(y2)}"
            )
        else:
            # Through the edge's virtual nodes: straight down each layer it crosses, curves in the gaps.
            points = [(x1, y1)]
            for layer, x in enumerate(placed.bends.get((edge.source, edge.target), []), start=1):
                y = sy + layer * (node_height + gap_y)
                points += [(x, y), (x, y + node_height)]
            points.append((x2, y2))
            d = f"M{_number(x1)},{_number(y1)}"
            for index in range(1, len(points)):
                (ax, ay), (bx, by) = points[index - 1], points[index]
                if index % 2:  # a gap between layers
                    middle = (ay + by) / 2
                    d += (
                        f" C{_number(ax)},{_number(middle)} {_number(bx)},{_number(middle)} {_number(bx)},{_number(by)}"
                    )
                else:
                    d += f" L{_number(bx)},{_number(by)}"
        opacity = 1.0 if edge.origin != "learned" else 0.35 + 0.65 * min(max(edge.weight, 0.0), 1.0)
        tip = f"{names.get(edge.source, edge.source)} → {names.get(edge.target, edge.target)}: {text}"
        if edge.origin != "authored":
            tip += f" (weight {edge.weight:.2f})"
        parts.append(
            f'<path class="edge edge-{escape(edge.origin)}" d="{d}" fill="none" stroke="{colour}" '
            f'stroke-width="1.6" opacity="{opacity:.2f}"{dash} marker-end="url(#arrow-{escape(edge.origin)})">'
            f"<title>{escape(tip)}</title></path>"
        )
    for skill in skills:
        x, y = position[skill]
        fill = fills.get(skill, "#ffffff")
        dark = fill.lower() in {BLUE, GREEN, "#1e3a8a", "#166534", "#15803d"}
        ink = "#ffffff" if dark else INK
        name = names.get(skill, skill)
        lines = _wrap(name, 22)
        caption = captions.get(skill)
        parts.append(
            f'<g class="node" data-skill="{escape(skill)}"><title>{escape(name)}'
            f"{' · ' + escape(caption) if caption else ''}</title>"
        )
        parts.append(
            f'<rect x="{_number(x)}" y="{_number(y)}" width="{node_width}" height="{node_height}" rx="8" '
            f'fill="{fill}" stroke="#94a3b8"/>'
        )
        total_lines = len(lines) + (1 if caption else 0)
        first = y + node_height / 2 - (total_lines - 1) * 6.5 + 4
        for index, line in enumerate(lines):
            parts.append(
                _text(x + node_width / 2, first + index * 13, line, size=11, anchor="middle", fill=ink, weight="600")
            )
        if caption:
            parts.append(
                _text(
                    x + node_width / 2,
                    first + len(lines) * 13,
                    caption,
                    size=10,
                    anchor="middle",
                    fill="#e2e8f0" if dark else MUTED,
                )
            )
        parts.append("</g>")
    return "".join(parts) + "</svg>"
