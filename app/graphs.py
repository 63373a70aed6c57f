"""Layered graphs drawn with st-link-analysis (Cytoscape.js; its assets ship in the wheel, so the
browser fetches nothing from elsewhere). Layers run left to right, input to output."""

import math

from st_link_analysis import st_link_analysis
from st_link_analysis.component.events import Event

ROLE_COLOURS = {"key": "#d62728", "noise": "#9467bd", "irrelevant": "#9e9e9e"}
NEURON_COLOUR = "#1f77b4"
CHAIN_COLOUR = "#ff9f1c"
LAYER_GAP, ROW_GAP = 260, 70


class Style:
    """One Cytoscape style rule (st-link-analysis takes objects with `dump()`)."""

    def __init__(self, selector: str, **style):
        self.selector, self.style = selector, {k.replace("_", "-"): v for k, v in style.items()}

    def dump(self) -> dict:
        return {"selector": self.selector, "style": self.style}


NODE_STYLES = [
    Style(
        "node",
        width="data(diameter)",
        height="data(diameter)",
        label="data(name)",
        font_size=12,
        min_zoomed_font_size=0,
        text_valign="bottom",
        background_color=NEURON_COLOUR,
    ),
    *[Style(f"node[role = '{role}']", background_color=colour) for role, colour in ROLE_COLOURS.items()],
    Style("node[?chain]", border_width=5, border_color=CHAIN_COLOUR),
]
EDGE_STYLES = [
    Style("edge", width="data(width)", curve_style="bezier", target_arrow_shape="triangle", opacity=0.7),
    Style("edge[?chain]", line_color=CHAIN_COLOUR, target_arrow_color=CHAIN_COLOUR, opacity=1),
]


def short(uid: str) -> str:
    """`model/method/L1/c0` -> `L1/c0`, `model/L1/3` -> `L1/3`."""
    return "/".join(uid.split("/")[-2:])


def community_elements(
    communities: list[dict], flows: list[dict], relay_class: int | None = None, chain: list[str] = ()
) -> dict:
    """A node per community (diameter ~ sqrt(size), colour = role, placed by layer) and an edge per
    flow (width ~ bits); the members of `chain` and its links are highlighted."""
    shown = {c["uid"] for c in communities}
    links = set(zip(chain, chain[1:]))
    nodes = [
        _node(
            c["uid"],
            c["layer"],
            1.6 * c["index"],
            18 + 8 * math.sqrt(c["size"]),
            c["uid"] in chain,
            role=c["role"],
            size=c["size"],
            community_label=c["label"],
            relay_bits=round(c["relay_bits"][relay_class], 3) if relay_class is not None and c["relay_bits"] else None,
        )
        for c in communities
    ]
    flows = [f for f in flows if f["source"] in shown and f["target"] in shown]
    return {"nodes": nodes, "edges": _edges(flows, 10, links)}


def neuron_elements(flows: list[dict], members: set[str]) -> dict:
    """The neuron graph around one community: its members (highlighted) and their strongest flows."""
    uids = {f["source"] for f in flows} | {f["target"] for f in flows} | members
    return {"nodes": _stacked(uids, 24, members), "edges": _edges(flows, 6)}


def path_elements(paths: list[list[str]]) -> dict:
    """Paths of uids (relay chains, flow paths) as one graph; the first path highlighted."""
    uids = {uid for path in paths for uid in path}
    links = [{"source": a, "target": b, "bits": 1.0} for path in paths for a, b in zip(path, path[1:])]
    unique = list({(lay["source"], lay["target"]): lay for lay in links}.values())
    return {"nodes": _stacked(uids, 26, set(paths[0])), "edges": _edges(unique, 2, set(zip(paths[0], paths[0][1:])))}


def layer_of(uid: str) -> int:
    """The layer index in a neuron or community uid (`.../L2/...`)."""
    return int(uid.split("/")[-2][1:])


def _stacked(uids: set[str], diameter: float, highlighted: set[str]) -> list[dict]:
    """Nodes placed in columns by layer, stacked in uid order within a layer."""
    rows: dict[int, int] = {}
    nodes = []
    for uid in sorted(uids, key=lambda u: (layer_of(u), len(u), u)):
        layer = layer_of(uid)
        rows[layer] = rows.get(layer, -1) + 1
        nodes.append(_node(uid, layer, 0.6 * rows[layer], diameter, uid in highlighted))
    return nodes


def _node(uid: str, layer: int, row: float, diameter: float, chain: bool, **data) -> dict:
    return {
        "data": {"id": uid, "label": "Node", "name": short(uid), "diameter": diameter, "chain": chain, **data},
        "position": {"x": LAYER_GAP * layer, "y": ROW_GAP * row},
    }


def _edges(flows: list[dict], widest: float, chain_links: set = frozenset()) -> list[dict]:
    """Edges with width 1..`widest` in proportion to bits."""
    top = max((f["bits"] for f in flows), default=1.0) or 1.0
    return [
        {
            "data": {
                "id": f"{f['source']}>{f['target']}",
                "label": "FLOWS_TO",
                "source": f["source"],
                "target": f["target"],
                "bits": round(f["bits"], 3),
                "width": 1 + (widest - 1) * f["bits"] / top,
                "chain": (f["source"], f["target"]) in chain_links,
            }
        }
        for f in flows
    ]


def draw(elements: dict, key: str, height: int = 520):
    """Draw `elements`; returns the id of the node the user clicked, or None."""
    event = st_link_analysis(
        elements,
        layout={"name": "preset", "fit": True, "padding": 30},
        node_styles=NODE_STYLES,
        edge_styles=EDGE_STYLES,
        height=height,
        key=key,
        events=[Event("clicked", "tap", "node")],
    )
    if event and event.get("action") == "clicked":
        return event["data"]["target_id"]
    return None
