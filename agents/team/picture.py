"""An SVG of one team turn: which agents spoke in each round and which messages each one read.

One column per round, one row per agent. An agent that spoke is a filled circle (red-rimmed when
the firewall hid its message); a dropped agent is a hollow grey dashed circle. Spatial edges
(read in the same round) are arcs inside a column, temporal edges (read from the round before)
lines between columns, and the edges into the decision node at the right are grey. Pure string
building from the turn's ``policy_trace`` (:class:`~horizongym.agents.team.policy.TeamPolicy`).
"""

from __future__ import annotations

from typing import Any
from xml.sax.saxutils import escape, quoteattr

from horizongym.agents.team.graph import TeamGraph

_COLUMN, _ROW, _LEFT, _TOP, _RADIUS = 170, 70, 120, 70, 16
_SPATIAL, _TEMPORAL, _DECISION = "#2b6cb0", "#dd6b20", "#718096"


class NotATeamTrace(ValueError):
    """A step's policy trace that is not a team turn's."""


def is_team_trace(trace: object) -> bool:
    return isinstance(trace, dict) and "team" in trace and "graph" in trace and "rounds" in trace


def turn_svg(trace: dict[str, Any]) -> str:
    """The SVG document of the team turn ``trace`` describes (module docstring)."""
    if not is_team_trace(trace):
        raise NotATeamTrace("this policy trace is not a team turn's (no team, graph and rounds entries)")
    graph = TeamGraph.from_dict(trace["graph"])
    names: list[str] = list(trace.get("agents") or [f"agent {i}" for i in range(graph.n_agents)])
    hidden = {(e["round"], e["agent"]) for round_ in trace["rounds"] for e in round_ if e.get("hidden")}
    spoke = {(e["round"], e["agent"]) for round_ in trace["rounds"] for e in round_}
    width = _LEFT + _COLUMN * graph.rounds + 140
    height = _TOP + _ROW * graph.n_agents + 70

    def at(r: int, i: int) -> tuple[float, float]:
        return _LEFT + _COLUMN * r, _TOP + _ROW * i

    decision_xy = (_LEFT + _COLUMN * graph.rounds, _TOP + _ROW * (graph.n_agents - 1) / 2)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
        "<defs>",
        *(
            f'<marker id="arrow-{name}" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="6" markerHeight="6" '
            f'orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="{color}"/></marker>'
            for name, color in (("spatial", _SPATIAL), ("temporal", _TEMPORAL), ("decision", _DECISION))
        ),
        "</defs>",
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="10" y="20" font-size="14" font-weight="bold">{escape(str(trace["team"]))} '
        f"({escape(str(trace.get('mode', '')))} graph)</text>",
    ]
    for r in range(graph.rounds):
        x, _ = at(r, 0)
        parts.append(f'<text x="{x}" y="{_TOP - 30}" text-anchor="middle">round {r + 1}</text>')
    for r, kind, i, j in graph.edges():
        x1, y1 = at(r if kind == "spatial" else r - 1, i)
        x2, y2 = at(r, j)
        if kind == "spatial":  # an arc bulging right of the column, from i down (or up) to j
            bend = x1 + 25 + 12 * abs(j - i)
            end_y = y2 - _RADIUS * 0.7 if j > i else y2 + _RADIUS * 0.7
            parts.append(
                f'<path d="M {x1 + _RADIUS} {y1} Q {bend} {(y1 + y2) / 2} {x2 + _RADIUS * 0.7} {end_y}" '
                f'fill="none" stroke="{_SPATIAL}" stroke-width="1.5" marker-end="url(#arrow-spatial)"/>'
            )
        else:
            parts.append(
                f'<line x1="{x1 + _RADIUS}" y1="{y1}" x2="{x2 - _RADIUS}" y2="{y2}" stroke="{_TEMPORAL}" '
                f'stroke-width="1.2" stroke-opacity="0.8" marker-end="url(#arrow-temporal)"/>'
            )
    last = graph.rounds - 1
    for i in range(graph.n_agents):
        if (last, names[i]) in spoke and (last, names[i]) not in hidden:
            x1, y1 = at(last, i)
            parts.append(
                f'<line x1="{x1 + _RADIUS}" y1="{y1}" x2="{decision_xy[0] - 22}" y2="{decision_xy[1]}" '
                f'stroke="{_DECISION}" stroke-dasharray="4 3" marker-end="url(#arrow-decision)"/>'
            )
    for r in range(graph.rounds):
        for i in range(graph.n_agents):
            x, y = at(r, i)
            name = names[i]
            if not graph.active[r, i]:
                style = 'fill="white" stroke="#a0aec0" stroke-dasharray="3 3"'
                state = "dropped"
            elif (r, name) in hidden:
                style = 'fill="#fed7d7" stroke="#c53030" stroke-width="2.5"'
                state = "hidden by the firewall"
            elif (r, name) in spoke:
                style = 'fill="#bee3f8" stroke="#2c5282" stroke-width="1.5"'
                state = "spoke"
            else:
                style = 'fill="#edf2f7" stroke="#4a5568"'
                state = "gave no message"
            parts.append(
                f'<circle cx="{x}" cy="{y}" r="{_RADIUS}" {style}><title>{escape(name)}, round {r + 1}: '
                f"{state}</title></circle>"
            )
            color = "#a0aec0" if not graph.active[r, i] else "#1a202c"
            parts.append(
                f'<text x="{x}" y="{y + _RADIUS + 13}" text-anchor="middle" fill="{color}">{escape(name)}</text>'
            )
    dx, dy = decision_xy
    decision = trace.get("decision") or {}
    parts.append(
        f'<rect x="{dx - 20}" y="{dy - 16}" width="40" height="32" fill="#fefcbf" stroke="#975a16" stroke-width="1.5">'
        f"<title>{escape(str(decision.get('action', '')))}</title></rect>"
    )
    parts.append(
        f'<text x="{dx}" y="{dy + 30}" text-anchor="middle">decision ({escape(str(decision.get("kind", "")))})</text>'
    )
    parts.extend(_legend(10, height - 22))
    parts.append("</svg>")
    return "\n".join(parts)


def _legend(x: int, y: int) -> list[str]:
    items = [
        ('<circle cx="{x}" cy="{y}" r="6" fill="#bee3f8" stroke="#2c5282"/>', "spoke"),
        ('<circle cx="{x}" cy="{y}" r="6" fill="white" stroke="#a0aec0" stroke-dasharray="2 2"/>', "dropped"),
        ('<circle cx="{x}" cy="{y}" r="6" fill="#fed7d7" stroke="#c53030" stroke-width="2"/>', "hidden"),
        (f'<line x1="{{l}}" y1="{{y}}" x2="{{r}}" y2="{{y}}" stroke="{_SPATIAL}" stroke-width="2"/>', "same round"),
        (f'<line x1="{{l}}" y1="{{y}}" x2="{{r}}" y2="{{y}}" stroke="{_TEMPORAL}" stroke-width="2"/>', "round before"),
    ]
    out = []
    for k, (shape, label) in enumerate(items):
        cx = x + 10 + 110 * k
        out.append(shape.format(x=cx, y=y, l=cx - 8, r=cx + 8))
        out.append(f"<text x={quoteattr(str(cx + 12))} y={quoteattr(str(y + 4))}>{escape(label)}</text>")
    return out


def recorded_turn(steps: list[Any], turn: int | None) -> dict[str, Any]:
    """The team trace of step ``turn`` (counting from 1), or of the first step that has one."""
    for step in steps:
        trace = getattr(step, "policy_trace", None)
        if (turn is None or step.turn == turn) and is_team_trace(trace):
            assert isinstance(trace, dict)
            return trace
    where = f"turn {turn}" if turn is not None else "any turn"
    raise NotATeamTrace(f"no team trace at {where} of this episode (it was not played by a team:CONFIG policy)")
