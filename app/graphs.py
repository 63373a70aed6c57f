"""Layered graphs drawn with st-link-analysis (Cytoscape.js; its assets ship in the wheel, so the
browser fetches nothing from elsewhere). Layers run left to right, input to output, one column each
under a short header (the module path's last parts; the whole path is in the header's data, shown
when it is clicked). A model deeper than one band of PER_BAND columns wraps into bands, one under
the other, each holding whole blocks (`block_of`: a ResNet block, a transformer layer) where they
fit, so that every layer stays on screen at a readable size; the deeper the model, the fewer nodes
a column shows (`most_per_layer`). The geometry is chosen so that the view fitted to a canvas of
CANVAS px or wider shows labels at FONT px or more; the left STRIP px stay free for the component's
collapsed information panel.

Colours: the relay chain is orange and drawn on top, the communities made for the class (relay
modules, a NeurFlow circuit) blue; a node's fill is its `value` (the page's chosen measure) on a scale
made from the hidden communities alone, so that the input and output communities (drawn white) never
set it."""

import hashlib
import json
from collections import Counter

from st_link_analysis import st_link_analysis
from st_link_analysis.component.events import Event

CHAIN_COLOUR = "#ff7f0e"
OWN_COLOUR = "#1f77b4"
NEURON_COLOUR = "#9ecae1"
LINK_COLOUR = "#a0a0a0"
POSITIVE, ZERO, NEGATIVE = "#1b7837", "#f7f7f7", "#c51b7d"  # a node's value: high, 0, negative
FONT = 14  # label size in canvas px (at zoom 1)
CANVAS = 900  # the narrowest graph (px) the geometry is made for: zoom >= 1 there
STRIP = 48  # left margin: the component's collapsed information panel
LEFT = STRIP + 55  # the first column: half a header right of the panel
MARGIN = 95  # right margin: the last column's labels, clear of the component's tool and view bars
COLUMN = 115  # least px between the columns of a band
PER_BAND = 1 + (CANVAS - LEFT - MARGIN) // COLUMN  # columns in one band
WIDEST = 9  # columns a band may take to keep a block of that many layers whole (zoom 0.8 at CANVAS: 11 px labels)
ROW = 56  # px between the nodes of a column: the largest node (SIZES) and its label
BLOCK, HEADER, BAND_GAP = 30, 58, 60  # block title to header; header to first node; last node to next band
SIZES = (14, 32)  # px: the diameters of the smallest and the largest community
MOST_PER_LAYER, FEWEST_PER_LAYER = 16, 6  # nodes drawn per layer (one band; many bands); the rest: "+N more"
SHORTEST = 240  # px: a graph's least height, room for the component's view bar
PER_NODE = 2  # links kept by default: each community's strongest in and out
DRAWN = frozenset({"chain", "own", "end"})  # the classes a node that stands for a community or a neuron may have
HEADER_LINE = 16  # characters of a header line: a longer short name is broken after a dot


class Style:
    """One Cytoscape style rule (st-link-analysis takes objects with `dump()`)."""

    def __init__(self, selector: str, **style):
        self.selector, self.style = selector, {k.replace("_", "-"): v for k, v in style.items()}

    def dump(self) -> dict:
        return {"selector": self.selector, "style": self.style}


def drawn(node: dict) -> bool:
    """Whether a graph node stands for a community or a neuron (not a header, a title, a count or a corner)."""
    return set(node["classes"].split()) <= DRAWN


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


def path_of(layer: dict) -> str:
    """A layer's whole module path: its `module`, or its name where that is longer (a merge has no module)."""
    return max(layer.get("module") or "", layer["name"], key=len)


def short_name(name: str) -> str:
    """A layer's name to show: the last two parts of a module path, three when the middle one is a
    number (`resnet.encoder.stages.0.layers.0.layer.0.convolution` -> `layer.0.convolution`)."""
    parts = name.split(".")
    return ".".join(parts[-3:] if len(parts) > 2 and parts[-2].isdigit() else parts[-2:])


def layer_title(layer: dict) -> str:
    """`L5 layer.0.convolution`: a layer's index and short name, for pickers and captions."""
    return f"L{layer['index']} {short_name(layer['name'])}"


def _lines(name: str) -> list[str]:
    """A dotted name broken after dots into lines of at most HEADER_LINE characters where it can be."""
    lines = [""]
    for part in name.split("."):
        if lines[-1] and len(lines[-1]) + 1 + len(part) > HEADER_LINE:
            lines[-1] += "."
            lines.append(part)
        else:
            lines[-1] += ("." if lines[-1] else "") + part
    return lines


def block_of(path: str) -> str:
    """The repeated block a module path lies in: the path up to its first number (`layer2.0` of
    `layer2.0.conv1`, `bert.encoder.layer.3` of `bert.encoder.layer.3.attention.self.query`), or ""."""
    parts = path.split(".")
    return next((".".join(parts[: i + 1]) for i, part in enumerate(parts[:-1]) if part.isdigit()), "")


def most_per_layer(columns: int) -> int:
    """Nodes a column shows when `columns` layers are drawn: MOST_PER_LAYER in one band, fewer in
    each of several, so that a deep model's canvas stays about as tall as a shallow one's."""
    bands = -(-columns // PER_BAND)
    return MOST_PER_LAYER if bands == 1 else max(FEWEST_PER_LAYER, MOST_PER_LAYER // bands)


def strongest(flows: list[dict], per_node: int, keep: set[tuple[str, str]] = frozenset()) -> list[dict]:
    """The links among the `per_node` strongest out of their source or into their target (all links
    for 0), and every link in `keep` (source, target)."""
    if not per_node:
        return flows
    out, into, kept = Counter(), Counter(), []
    for f in sorted(flows, key=lambda f: -f["bits"]):
        pair = (f["source"], f["target"])
        if out[pair[0]] < per_node or into[pair[1]] < per_node or pair in keep:
            kept.append(f)
        out[pair[0]] += 1
        into[pair[1]] += 1
    return kept


def community_elements(
    communities: list[dict],
    flows: list[dict],
    layers: list[dict],
    chain: list[str] = (),
    own: set[str] = frozenset(),
    per_node: int = PER_NODE,
) -> dict:
    """A node per community (size ~ members, fill ~ its `value` where it has one), a column per
    layer of `layers`, an edge per flow (width ~ bits) among each community's `per_node` strongest;
    the `chain` (uids in order) and its links in orange, the `own` communities (made for the class)
    and their links in blue. A column shows `most_per_layer` communities: the chain's and own ones,
    then those of the largest |value| (or size); the rest are counted in one "+N more" node."""
    last = layers[-1]["index"] if layers else None
    by_layer: dict[int, list[dict]] = {}
    for c in communities:
        by_layer.setdefault(c["layer"], []).append(c)
    most = most_per_layer(len(by_layer))
    nodes = []
    for layer, members in by_layer.items():
        rank = sorted(members, key=lambda c: (c["uid"] not in chain and c["uid"] not in own, -_weight(c)))
        for c in sorted(rank[:most], key=lambda c: c["index"]):
            end = layer in (0, last)
            data = {k: v for k, v in c.items() if k in ("size", "concept", "made_for") and v is not None}
            if not end and c.get("value") is not None:
                data["value"] = float(f"{c['value']:.3g}")
            classes = " ".join(
                ["chain"] * (c["uid"] in chain) + ["own"] * (c["uid"] in own and c["uid"] not in chain) + ["end"] * end
            )
            nodes.append(_node(c["uid"], name_of(c["uid"], last), classes, **data))
        if len(rank) > most:
            nodes.append(_more(layer, len(rank) - most))
    shown = {n["data"]["id"] for n in nodes}
    links = [f for f in flows if f["source"] in shown and f["target"] in shown]
    chain_links = set(zip(chain, chain[1:]))
    own_links = {(f["source"], f["target"]) for f in links if f["source"] in own and f["target"] in own}
    kept = strongest(links, per_node, chain_links | own_links)
    return {"nodes": _placed(nodes, layers), "edges": _edges(kept, chain_links, own_links)}


def neuron_elements(flows: list[dict], members: set[str], layers: list[dict]) -> dict:
    """The neuron graph around one community: its members (highlighted) and the neurons they
    exchange their strongest flows with; at most `most_per_layer` per layer, strongest first."""
    strength: dict[str, float] = {uid: 0.0 for uid in members}
    for f in flows:
        for uid in (f["source"], f["target"]):
            strength[uid] = strength.get(uid, 0.0) + f["bits"]
    return _neurons(strength, members, flows, layers)


def path_elements(paths: list[list[str]], layers: list[dict]) -> dict:
    """Paths of uids (relay chains, flow paths) as one graph; the first path highlighted."""
    links = {(a, b): {"source": a, "target": b, "bits": 1.0} for path in paths for a, b in zip(path, path[1:])}
    strength = {uid: float(-i) for i, uid in enumerate(dict.fromkeys(u for path in paths for u in path))}
    first = list(paths[0]) if paths else []
    if all(is_community(uid) for uid in strength):
        last = layers[-1]["index"] if layers else None
        nodes = [_node(uid, name_of(uid, last), "chain" if uid in first else "") for uid in strength]
        return {"nodes": _placed(nodes, layers), "edges": _edges(list(links.values()), set(zip(first, first[1:])))}
    return _neurons(strength, set(first), list(links.values()), layers)


def _neurons(strength: dict[str, float], highlighted: set[str], flows: list[dict], layers: list[dict]) -> dict:
    """Neuron (or mixed) nodes, the strongest `most_per_layer` per layer, and the flows among them
    (those between two highlighted nodes in orange)."""
    last = layers[-1]["index"] if layers else None
    by_layer: dict[int, list[str]] = {}
    for uid in sorted(strength, key=lambda u: (u not in highlighted, -strength[u])):
        by_layer.setdefault(layer_of(uid), []).append(uid)
    most = most_per_layer(len(by_layer))
    nodes = []
    for layer, uids in by_layer.items():
        drawn = sorted(uids[:most], key=lambda u: int(u.rsplit("/", 1)[-1].lstrip("c")))
        nodes += [_node(uid, name_of(uid, last), "chain" if uid in highlighted else "") for uid in drawn]
        if len(uids) > most:
            nodes.append(_more(layer, len(uids) - most))
    shown = {n["data"]["id"] for n in nodes}
    links = [f for f in flows if f["source"] in shown and f["target"] in shown]
    pairs = {(f["source"], f["target"]) for f in links if f["source"] in highlighted and f["target"] in highlighted}
    return {"nodes": _placed(nodes, layers), "edges": _edges(links, pairs)}


def _weight(c: dict) -> float:
    """What ranks a community within its layer: the size of its value, else its size."""
    return abs(c["value"]) if c.get("value") is not None else float(c["size"])


def _node(uid: str, label: str, classes: str, **data) -> dict:
    return {"data": {"id": uid, "label": label, "layer": layer_of(uid), **data}, "classes": classes}


def _more(layer: int, hidden: int) -> dict:
    return {
        "data": {"id": f"more/L{layer}", "label": f"+{hidden} more", "layer": layer},
        "classes": "more",
    }


def bands(columns: list[int], blocks: dict[int, str]) -> list[list[int]]:
    """The layers `columns` (in order) cut into bands of at most PER_BAND, or as many as the longest
    block (`blocks`) has up to WIDEST; a run of layers of one block kept in one band where it fits."""
    runs = _runs(columns, blocks)
    width = max(PER_BAND, min(WIDEST, max((len(run) for run in runs if blocks.get(run[0])), default=0)))
    cut = [[]]
    for run in runs:
        if len(cut[-1]) + len(run) > width and cut[-1] and len(run) <= width:
            cut.append([])
        for layer in run:
            if len(cut[-1]) == width:
                cut.append([])
            cut[-1].append(layer)
    return cut


def _placed(nodes: list[dict], layers: list[dict]) -> list[dict]:
    """Nodes positioned in columns by layer, in bands (`bands`), a header above each column (its
    short name; the whole path in `module`), a block's title above its columns, and two invisible
    corner nodes that fix the fitted width to CANVAS px."""
    by_index = {lay["index"]: lay for lay in layers}
    blocks = {i: block_of(path_of(lay)) for i, lay in by_index.items()}
    columns = sorted({n["data"]["layer"] for n in nodes})
    cut = bands(columns, blocks)
    titled = any(blocks.get(layer) for layer in columns)
    rows = Counter(n["data"]["layer"] for n in nodes)
    x, top, placed, at = {}, {}, [], 0.0
    for band in cut:
        gap = max(COLUMN, (CANVAS - LEFT - MARGIN) / max(1, len(band) - 1)) if len(cut) == 1 else COLUMN
        for i, layer in enumerate(band):
            x[layer], top[layer] = LEFT + gap * i, at
        placed += _titles(band, x, at, blocks) if titled else []
        at += (BLOCK if titled else 0) + HEADER + ROW * (max(rows[layer] for layer in band) - 1) + BAND_GAP
    row = Counter()
    for n in nodes:
        layer = n["data"]["layer"]
        y = top[layer] + (BLOCK if titled else 0) + HEADER + ROW * row[layer]
        row[layer] += 1
        placed.append({**n, "position": {"x": x[layer], "y": y}})
    for layer in columns:
        lay = by_index.get(layer, {"index": layer, "name": ""})
        data = {"id": f"header/L{layer}", "label": "\n".join([f"L{layer}", *_lines(short_name(lay["name"]))])}
        if lay["name"]:
            data["module"] = path_of(lay)
        position = {"x": x[layer], "y": top[layer] + (BLOCK if titled else 0)}
        placed.append({"data": data, "classes": "header", "position": position})
    corners = [
        {"data": {"id": f"corner/{i}", "label": ""}, "classes": "corner", "position": {"x": edge, "y": 0}}
        for i, edge in enumerate((0, CANVAS))
    ]
    return placed + corners


def _titles(band: list[int], x: dict[int, float], y: float, blocks: dict[int, str]) -> list[dict]:
    """A title over each run of a band's layers that lie in one block (its short name)."""
    return [
        {
            "data": {"id": f"block/L{run[0]}", "label": short_name(blocks[run[0]]), "module": blocks[run[0]]},
            "classes": "block",
            "position": {"x": (x[run[0]] + x[run[-1]]) / 2, "y": y},
        }
        for run in _runs(band, blocks)
        if blocks.get(run[0])
    ]


def _runs(layers: list[int], blocks: dict[int, str]) -> list[list[int]]:
    """`layers` (in order) cut where the block changes."""
    runs: list[list[int]] = []
    for layer in layers:
        if runs and blocks.get(layer) == blocks.get(runs[-1][-1]):
            runs[-1].append(layer)
        else:
            runs.append([layer])
    return runs


def height_of(elements: dict) -> int:
    """Component height (px) that shows every row at zoom 1 or more."""
    bottom = max((n["position"]["y"] for n in elements["nodes"]), default=0)
    return max(SHORTEST, int(bottom + HEADER + 40))


def _edges(flows: list[dict], chain: set[tuple[str, str]], own: set[tuple[str, str]] = frozenset()) -> list[dict]:
    """Edges for `flows`: those in `chain` (source, target) of class chain, those in `own` of class own."""
    return [
        {
            "data": {
                "id": f"{f['source']}>{f['target']}",
                "label": "FLOWS_TO",
                "source": f["source"],
                "target": f["target"],
                "bits": float(f"{f['bits']:.3g}"),
            },
            "classes": "chain" if pair in chain else "own" if pair in own else "",
        }
        for f in flows
        for pair in [(f["source"], f["target"])]
    ]


def styles(elements: dict) -> list[Style]:
    """The style rules for `elements`: node diameter ~ size and edge width ~ bits (both scaled to the
    hidden communities and their links), a node's fill ~ its value (green up to the largest, magenta
    down to the most negative, white at 0), chain and own nodes and links over the others."""
    nodes = [n["data"] for n in elements["nodes"] if drawn(n) and "end" not in n["classes"].split()]
    size = max((n.get("size", 1) for n in nodes), default=1) or 1
    bits = max((e["data"]["bits"] for e in elements["edges"]), default=1.0) or 1.0
    values = [n["value"] for n in nodes if "value" in n]
    high, low = max([*values, 0.0]) or 1.0, min([*values, 0.0]) or -1.0
    return [
        Style(
            "node",
            width=26,
            height=26,
            label="data(label)",
            font_size=FONT,
            min_zoomed_font_size=0,
            text_valign="bottom",
            text_margin_y=2,
            text_background_color="#ffffff",
            text_background_opacity=0.75,
            background_color=NEURON_COLOUR,
            border_width=1,
            border_color="#555",
        ),
        Style("node[value >= 0]", background_color=f"mapData(value, 0, {high}, {ZERO}, {POSITIVE})"),
        Style("node[value < 0]", background_color=f"mapData(value, {low}, 0, {NEGATIVE}, {ZERO})"),
        Style(
            "node[size]",
            width=f"mapData(size, 0, {size}, {SIZES[0]}, {SIZES[1]})",
            height=f"mapData(size, 0, {size}, {SIZES[0]}, {SIZES[1]})",
        ),
        Style("node.end", background_color="#ffffff", width=24, height=24),
        Style("node.own", border_width=4, border_color=OWN_COLOUR),
        Style("node.chain", border_width=5, border_color=CHAIN_COLOUR),
        Style(
            ".header",
            background_opacity=0,
            border_width=0,
            font_weight="bold",
            font_size=FONT - 1,
            text_valign="center",
            text_wrap="wrap",
            text_background_opacity=0,
        ),
        Style(".block", background_opacity=0, border_width=0, color="#666", text_valign="center", events="no"),
        Style(".corner", width=1, height=1, opacity=0, events="no"),
        Style(".more", shape="round-rectangle", background_color="#eeeeee", width=40, height=20, events="no"),
        Style(
            "edge",
            width=f"mapData(bits, 0, {bits}, 1, 8)",
            curve_style="bezier",
            target_arrow_shape="triangle",
            line_color=LINK_COLOUR,
            target_arrow_color=LINK_COLOUR,
            opacity=0.35,
            z_index=0,
        ),
        Style("edge.own", line_color=OWN_COLOUR, target_arrow_color=OWN_COLOUR, opacity=0.9, z_index=5),
        Style(
            "edge.chain",
            line_color=CHAIN_COLOUR,
            target_arrow_color=CHAIN_COLOUR,
            width=f"mapData(bits, 0, {bits}, 4, 10)",
            opacity=1,
            z_index=10,
        ),
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
