"""Layered graphs drawn with st-link-analysis (Cytoscape.js; its assets ship in the wheel, so the
browser fetches nothing from elsewhere). Layers run left to right, input to output, one column each
under a header. The geometry is chosen so that the view fitted to a canvas of CANVAS px or wider
shows labels at FONT px or more, with room on the left for the component's information panel."""

import hashlib
import json

from st_link_analysis import st_link_analysis
from st_link_analysis.component.events import Event

ROLE_COLOURS = {"key": "#d62728", "noise": "#9467bd", "irrelevant": "#9e9e9e"}
NEURON_COLOUR = "#1f77b4"
CHAIN_COLOUR = "#ff9f1c"
FONT = 14  # label size in canvas px (at zoom 1)
CANVAS = 900  # the narrowest graph (px) the geometry is made for: zoom >= 1 there
PANEL = 300  # left margin kept free for the component's information panel (17.5rem wide)
MARGIN = 110  # right margin: the last column's labels
ROW, HEADER = 68, 60  # px between nodes of a column; from the header row to the first node
MOST_PER_LAYER = 24  # nodes drawn per layer; the rest are counted in one "+N more" node


class Style:
    """One Cytoscape style rule (st-link-analysis takes objects with `dump()`)."""

    def __init__(self, selector: str, **style):
        self.selector, self.style = selector, {k.replace("_", "-"): v for k, v in style.items()}

    def dump(self) -> dict:
        return {"selector": self.selector, "style": self.style}


def short(uid: str) -> str:
    """`model/method/L1/c0` -> `L1/c0`, `model/L1/3` -> `L1/3`."""
    return "/".join(uid.split("/")[-2:])


def layer_of(uid: str) -> int:
    """The layer index in a neuron or community uid (`.../L2/...`)."""
    return int(uid.split("/")[-2][1:])


def model_of(uid: str) -> str:
    """The model id a uid starts with."""
    return uid.split("/", 1)[0]


def is_community(uid: str) -> bool:
    """Whether `uid` names a community (`model/method/L1/c0`) rather than a neuron (`model/L1/3`)."""
    return uid.rsplit("/", 1)[-1].startswith("c")


def name_of(uid: str, last_layer: int | None) -> str:
    """A node's label: `L1/c0`, or `class 3` for an output neuron, `class 3 (c0)` for an output community."""
    if last_layer is None or layer_of(uid) != last_layer:
        return short(uid)
    index = uid.rsplit("/", 1)[-1]
    return f"class {index[1:]} ({index})" if is_community(uid) else f"class {index}"


def community_elements(
    communities: list[dict],
    flows: list[dict],
    layers: list[dict],
    highlighted: set[str] = frozenset(),
    relay_class: int | None = None,
) -> dict:
    """A node per community (size ~ members, colour = role, or relay bits for `relay_class`), a
    column per layer of `layers`, an edge per flow (width ~ bits); `highlighted` communities and the
    links between them are drawn in orange. At most MOST_PER_LAYER per layer: the highlighted ones,
    then the largest (or those relaying `relay_class` most)."""
    last = layers[-1]["index"] if layers else None
    by_layer: dict[int, list[dict]] = {}
    for c in communities:
        by_layer.setdefault(c["layer"], []).append(c)
    nodes = []
    for layer, members in by_layer.items():
        rank = sorted(members, key=lambda c: (c["uid"] not in highlighted, -_weight(c, relay_class)))
        for c in sorted(rank[:MOST_PER_LAYER], key=lambda c: c["index"]):
            data = {"size": c["size"], "role": c["role"], "concept": c["concept"]}
            if relay_class is not None:
                data["relay_bits"] = round(_weight(c, relay_class), 3)
            nodes.append(_node(c["uid"], name_of(c["uid"], last), c["uid"] in highlighted, **data))
        if len(rank) > MOST_PER_LAYER:
            nodes.append(_more(layer, len(rank) - MOST_PER_LAYER, "communities"))
    shown = {n["data"]["id"] for n in nodes}
    links = [f for f in flows if f["source"] in shown and f["target"] in shown]
    return {"nodes": _placed(nodes, layers), "edges": _edges(links, highlighted)}


def neuron_elements(flows: list[dict], members: set[str], layers: list[dict]) -> dict:
    """The neuron graph around one community: its members (highlighted) and the neurons they
    exchange their strongest flows with; at most MOST_PER_LAYER per layer, strongest first."""
    strength: dict[str, float] = {uid: 0.0 for uid in members}
    for f in flows:
        for uid in (f["source"], f["target"]):
            strength[uid] = strength.get(uid, 0.0) + f["bits"]
    return _neurons(strength, members, flows, layers)


def path_elements(paths: list[list[str]], layers: list[dict]) -> dict:
    """Paths of uids (relay chains, flow paths) as one graph; the first path highlighted."""
    links = {(a, b): {"source": a, "target": b, "bits": 1.0} for path in paths for a, b in zip(path, path[1:])}
    strength = {uid: float(-i) for i, uid in enumerate(dict.fromkeys(u for path in paths for u in path))}
    first = set(paths[0]) if paths else set()
    if all(is_community(uid) for uid in strength):
        last = layers[-1]["index"] if layers else None
        nodes = [_node(uid, name_of(uid, last), uid in first) for uid in strength]
        return {"nodes": _placed(nodes, layers), "edges": _edges(list(links.values()), first)}
    return _neurons(strength, first, list(links.values()), layers)


def _neurons(strength: dict[str, float], highlighted: set[str], flows: list[dict], layers: list[dict]) -> dict:
    """Neuron (or mixed) nodes, the strongest MOST_PER_LAYER per layer, and the flows among them."""
    last = layers[-1]["index"] if layers else None
    by_layer: dict[int, list[str]] = {}
    for uid in sorted(strength, key=lambda u: (u not in highlighted, -strength[u])):
        by_layer.setdefault(layer_of(uid), []).append(uid)
    nodes = []
    for layer, uids in by_layer.items():
        drawn = sorted(uids[:MOST_PER_LAYER], key=lambda u: int(u.rsplit("/", 1)[-1].lstrip("c")))
        nodes += [_node(uid, name_of(uid, last), uid in highlighted) for uid in drawn]
        if len(uids) > MOST_PER_LAYER:
            nodes.append(_more(layer, len(uids) - MOST_PER_LAYER, "neurons"))
    shown = {n["data"]["id"] for n in nodes}
    links = [f for f in flows if f["source"] in shown and f["target"] in shown]
    return {"nodes": _placed(nodes, layers), "edges": _edges(links, highlighted)}


def _weight(c: dict, relay_class: int | None) -> float:
    """What ranks a community within its layer: its relay bits for the class, else its size."""
    if relay_class is None:
        return float(c["size"])
    bits = c.get("relay_bits") or []
    return float(bits[relay_class]) if relay_class < len(bits) else 0.0


def _node(uid: str, label: str, highlighted: bool, **data) -> dict:
    data = {"id": uid, "label": label, "layer": layer_of(uid), **data}
    return {"data": data, "classes": "chain" if highlighted else ""}


def _more(layer: int, hidden: int, what: str) -> dict:
    return {
        "data": {"id": f"more/L{layer}", "label": f"+{hidden} more {what}", "layer": layer},
        "classes": "more",
    }


def _placed(nodes: list[dict], layers: list[dict]) -> list[dict]:
    """Nodes positioned in columns by layer (a header above each), two invisible corner nodes that
    fix the fitted width to CANVAS px (the left one keeps the information panel's room free)."""
    columns = sorted({n["data"]["layer"] for n in nodes})
    gap = (CANVAS - PANEL - MARGIN) / max(1, len(columns) - 1)
    x = {layer: PANEL + gap * i for i, layer in enumerate(columns)}
    rows: dict[int, int] = {}
    placed = []
    for n in nodes:
        layer = n["data"]["layer"]
        rows[layer] = rows.get(layer, -1) + 1
        placed.append({**n, "position": {"x": x[layer], "y": HEADER + ROW * rows[layer]}})
    names = {lay["index"]: lay["name"] for lay in layers}
    headers = [
        {
            "data": {"id": f"header/L{layer}", "label": f"L{layer} {names.get(layer, '')}".strip()},
            "classes": "header",
            "position": {"x": x[layer], "y": 0},
        }
        for layer in columns
    ]
    corners = [
        {"data": {"id": f"corner/{i}", "label": ""}, "classes": "corner", "position": {"x": at, "y": 0}}
        for i, at in enumerate((0, CANVAS))
    ]
    return headers + placed + corners


def height_of(elements: dict) -> int:
    """Component height (px) that shows every row at zoom 1 or more."""
    bottom = max((n["position"]["y"] for n in elements["nodes"]), default=0)
    return int(bottom + 2 * HEADER + 40)


def _edges(flows: list[dict], highlighted: set[str]) -> list[dict]:
    return [
        {
            "data": {
                "id": f"{f['source']}>{f['target']}",
                "label": "FLOWS_TO",
                "source": f["source"],
                "target": f["target"],
                "bits": round(f["bits"], 3),
            },
            "classes": "chain" if f["source"] in highlighted and f["target"] in highlighted else "",
        }
        for f in flows
    ]


def styles(elements: dict) -> list[Style]:
    """The style rules for `elements`: node diameter ~ size, edge width ~ bits, and, where nodes
    carry relay bits, a white-to-red scale of them."""
    nodes = [n["data"] for n in elements["nodes"]]
    size = max((n.get("size", 1) for n in nodes), default=1) or 1
    bits = max((e["data"]["bits"] for e in elements["edges"]), default=1.0) or 1.0
    relay = max((n["relay_bits"] for n in nodes if "relay_bits" in n), default=None)
    scale = f"mapData(relay_bits, 0, {relay or 1}, #fff5f0, #67000d)"
    return [
        Style(
            "node",
            width=30,
            height=30,
            label="data(label)",
            font_size=FONT,
            min_zoomed_font_size=0,
            text_valign="bottom",
            text_margin_y=3,
            background_color=NEURON_COLOUR,
            border_width=1,
            border_color="#555",
        ),
        *[Style(f"node[role = '{role}']", background_color=colour) for role, colour in ROLE_COLOURS.items()],
        *([] if relay is None else [Style("node[relay_bits]", background_color=scale)]),
        Style("node[size]", width=f"mapData(size, 0, {size}, 18, 42)", height=f"mapData(size, 0, {size}, 18, 42)"),
        Style("node.chain", border_width=5, border_color=CHAIN_COLOUR),
        Style(".header", background_opacity=0, border_width=0, font_weight="bold", text_valign="center", events="no"),
        Style(".corner", width=1, height=1, opacity=0, events="no"),
        Style(".more", shape="round-rectangle", background_color="#eeeeee", width=40, height=20, events="no"),
        Style(
            "edge",
            width=f"mapData(bits, 0, {bits}, 1, 10)",
            curve_style="bezier",
            target_arrow_shape="triangle",
            opacity=0.7,
        ),
        Style("edge.chain", line_color=CHAIN_COLOUR, target_arrow_color=CHAIN_COLOUR, opacity=1),
    ]


def draw(elements: dict, key: str) -> str | None:
    """Draw `elements` (fitted; a new view of them is drawn afresh); the uid the user clicked, or None."""
    height = height_of(elements)
    view = hashlib.sha1(json.dumps([sorted(n["data"]["id"] for n in elements["nodes"]), height]).encode())
    event = st_link_analysis(
        elements,
        layout={"name": "preset", "fit": True, "padding": 20},
        node_styles=styles(elements),
        height=height,
        key=f"{key}-{view.hexdigest()[:12]}",
        events=[Event("clicked", "tap", "node")],
    )
    if event and event.get("action") == "clicked":
        return event["data"]["target_id"]
    return None
