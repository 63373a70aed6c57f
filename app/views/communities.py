"""Community graph: one model's communities of one method, layer by layer, coloured by a measure of
a chosen class, with that class's relay chain (orange) and the modules or circuit made for it (blue);
below, the selected community's page. The address holds the whole view."""

import altair as alt
import numpy as np
import pandas as pd
import streamlit as st

from neurocypher.app.explorer import (
    ask,
    choose,
    class_names,
    image_shape,
    layers_of,
    open_uid,
    paged,
    params_of,
    pick_class,
    pick_method,
    pick_model,
    read,
    shown_errors,
    store,
)
from neurocypher.app.graphs import PER_NODE, community_elements, draw, layer_title, name_of, neuron_elements
from neurocypher.app.pictures import crisp, grid, heatmap, pixels
from neurocypher.app.tables import chain_caption, figure, show_table
from neurocypher.queries import explore
from neurocypher.queries.chains import DEFAULT_SCORE, fidelity_text

OWN_CLASS = {"relay": "relay modules", "neurflow": "NeurFlow circuit"}  # methods whose communities are per class
MEASURES = {  # what colours a node: (community field, one value per class?, what it is)
    "closing specificity for the class": (
        "closing_specificity",
        True,
        "accuracy the class loses when the community is closed minus the most another class loses (green: it costs "
        "the class most; magenta: it costs another class more; white: 0)",
    ),
    "relay bits for the class": (
        "relay_bits",
        True,
        "relay information for the class, in bits: conditional mutual information between the community's state "
        "and the class given the rest of its layer (white 0 to green, the most among the hidden communities)",
    ),
    "accuracy lost when closed": (
        "acc_drop",
        False,
        "the fraction of all samples no longer classified correctly when the community is closed (green: lost; "
        "magenta: closing it helps)",
    ),
}


def concept(c: dict) -> str:
    """What a community responds to, in words (a community of constant neurons responds to nothing)."""
    return "inactive: its neurons are constant on the probe set" if c["dead"] else c["label"] or ""


def value_of(c: dict, measure: str, k: int) -> float | None:
    """A community's colour value: the measure's value for class k (or overall)."""
    field, per_class, _ = MEASURES[measure]
    value = c.get(field)
    if per_class:
        return float(value[k]) if value and k < len(value) else None
    return None if value is None else float(value)


def layer_range(model: str, layers: list[dict]) -> tuple[int, int]:
    """The layers shown, from the address (`?layers=1-3`) or a slider of the model's own (every layer
    when the model is opened again: Streamlit drops a slider's state while another model is shown),
    written back to the address."""
    indexes = [lay["index"] for lay in layers]
    key = f"layer_range.{model}"
    wanted = st.query_params.get("layers", "")
    low, _, high = wanted.partition("-")
    if (
        f"{low}-{high}" == wanted
        and {low, high} <= {str(i) for i in indexes}
        and wanted != st.session_state.get("address.layers")
    ):
        st.session_state[key] = (int(low), int(high))
    first, last = st.select_slider(
        "Layers",
        options=indexes,
        value=st.session_state.get(key, (indexes[0], indexes[-1])),
        key=key,
        format_func=lambda i: layer_title(layers[i]),
    )
    st.query_params["layers"] = st.session_state["address.layers"] = f"{first}-{last}"
    return first, last


def chain_text(rows: list[dict], k: int, last_layer: int) -> None:
    """The class's top relay chain in words, its score explained, and its causal check."""
    if not rows:
        st.caption(f"No chain of {method} communities relays class {k} through every layer.")
        return
    st.markdown(
        f"**Relay chain for class {k} ({names[k]})**: "
        + " → ".join(f"`{name_of(uid, last_layer)}`" for uid in rows[0]["chain"])
    )
    st.caption(chain_caption(rows[0], k, DEFAULT_SCORE) + " Causal check: " + fidelity_text(rows[0], k) + ".")


st.title("Community graph")
model = pick_model()
method = pick_method(model) if model else None
if not method:
    st.stop()
layers = layers_of(model)
last_layer = layers[-1]["index"]
names = class_names(model)
left, middle, right = st.columns(3)
with left:
    relay_class = pick_class(model)
with middle:
    measure = choose("Colour nodes by", list(MEASURES), "colour")
with right:
    first, last = layer_range(model, layers)

stored = paged(explore.COMMUNITIES, model, 10_000, method=method)
communities = [
    {
        **c,
        "concept": concept(c),
        "value": value_of(c, measure, relay_class),
        "made_for": f"class {c['class']}" if c["class"] is not None and c["layer"] < last_layer else None,
    }
    for c in stored
    if first <= c["layer"] <= last
]
strongest = paged(explore.COMMUNITY_FLOWS, model, 1, method=method, min_bits=0.0)
top_bits = float(np.ceil(strongest[0]["bits"])) if strongest else 1.0
a, b, c = st.columns(3)
per_node = a.number_input(
    "Strongest links per community",
    0,
    100,
    PER_NODE,
    key="per_node",
    help="Each community's strongest links in and out are drawn (0: every link); the chain's links and those among "
    "the communities made for the class always are.",
)
min_bits = b.slider(
    "Least flow of a link (bits)",
    0.0,
    top_bits,
    0.0,
    top_bits / 100,
    key="min_bits",
    help="A link's flow is the sum of the flow bits (mutual information) of every member-to-member neuron edge "
    f"between the two communities; the strongest link here carries {figure(top_bits)} bits.",
)
most = c.number_input("Most links read (strongest first, a page at a time)", 50, 20000, 1000, 50, key="most_links")
flows = paged(explore.COMMUNITY_FLOWS, model, int(most), method=method, min_bits=float(min_bits))
chain_rows = ask("relay-path", model=model, **{"class": relay_class}, method=method, limit=1)
chain = chain_rows[0]["chain"] if chain_rows else []
own = {c["uid"] for c in communities if method in OWN_CLASS and c["class"] == relay_class and c["layer"] < last_layer}
legend, attribution = st.columns([3, 1]) if image_shape(model) else (st.container(), None)
with legend:
    chain_text(chain_rows, relay_class, last_layer)
    st.caption(
        "**Orange**: the relay chain, its links drawn over the others. "
        + (f"**Blue**: the {OWN_CLASS[method]} made for class {relay_class}. " if method in OWN_CLASS else "")
        + f"Fill: {MEASURES[measure][2]}; the input and output communities are white, off the scale. "
        + f"Node size: members. Edge width: flow bits; each community's {per_node or 'every'} strongest links in "
        "and out. Click a community to open it, a layer's header for its module path."
    )
if attribution is not None:
    scores = ask("attribution", model=model, **{"class": relay_class}, limit=min(1000, layers[0]["width"]))
    values = np.zeros(layers[0]["width"])
    values[[row["index"] for row in scores]] = [row["score"] for row in scores]
    attribution.altair_chart(
        heatmap(pixels(values, image_shape(model)), "score", f"Attribution to class {relay_class}"),
        width="content",
    )
    attribution.caption("Each pixel's path flow into the class (NIF attribution, bits), bright = strong.")
elements = community_elements(communities, flows, layers, chain, own, int(per_node))
clicked = draw(elements, key=f"graph-{model}-{method}")

uids = [c["uid"] for c in communities]
new_view = st.session_state.get("view") != (model, method, relay_class)
st.session_state["view"] = (model, method, relay_class)
if not uids:
    st.info(f"No {method} communities in layers {first}..{last}.")
    st.stop()
start = chain[0] if chain and chain[0] in uids else uids[0]
if new_view:  # a new view starts at its relay chain (a link to a community still opens it: `choose`)
    st.session_state["community"] = start
if clicked in uids and clicked != st.session_state.get("clicked"):
    st.session_state["clicked"] = st.session_state["community"] = clicked
    st.query_params["community"] = st.session_state["address.community"] = clicked
uid = choose("Community", uids, "community", default=start, format_func=lambda u: name_of(u, last_layer))

found = read(explore.COMMUNITY_DETAIL, model, uid=uid)
if not found:
    st.error(f"no community {uid} in {model}: pick one above")
    st.stop()
detail = found[0]
st.subheader(f"{name_of(uid, last_layer)}: {concept(detail)}")
if detail["class"] is not None and detail["layer"] != last_layer:
    st.markdown(f"Made for **class {detail['class']} ({names[detail['class']]})** by the {method} method.")
top = int(np.argmax(detail["class_distribution"])) if detail["class_distribution"] else None
if top is not None:
    st.caption(
        f"Its top 20 samples (by its members' mean activation): {detail['class_distribution'][top]:.0%} of class {top} "
        f"({names[top]})."
    )
k = relay_class
metrics = st.columns(4)
metrics[0].metric("Size", detail["size"], help="member neurons (primary memberships)")
metrics[1].metric("Role", detail["role"], help="key: closing it costs accuracy; noise: closing it helps; irrelevant")
metrics[2].metric(
    "Accuracy lost when closed",
    figure(detail["acc_drop"], signed=True),
    help="fraction of all samples (0..1) no longer classified correctly when its members are closed (+0.05: five "
    "points lost)",
)
specificity = value_of(detail, "closing specificity for the class", k)
metrics[3].metric(
    f"Closing specificity for class {k}",
    "n/a" if specificity is None else figure(specificity, signed=True),
    help="accuracy class k loses when it is closed minus the most another class loses (fraction; negative: it costs "
    "another class more); the relay-path score",
)
per_class = pd.DataFrame(
    {
        "class": [f"{i}: {n}" for i, n in enumerate(names)],
        "bits": detail["relay_bits"] or [0.0] * len(names),
        "drop": detail["class_acc_drop"] or [0.0] * len(names),
    }
)
bits_chart, drop_chart = st.columns(2)
for column, field, title in (
    (bits_chart, "bits", "relay bits (bits)"),
    (drop_chart, "drop", "accuracy drop when closed (fraction)"),
):
    column.altair_chart(
        alt.Chart(per_class, height=220)
        .mark_bar()
        .encode(
            x=alt.X("class:N", sort=None),
            y=alt.Y(f"{field}:Q", title=title),
            tooltip=["class", alt.Tooltip(f"{field}:Q", format=".3g")],
        ),
        width="stretch",
    )
st.caption(
    "Relay bits: conditional mutual information between the community's state and each class. Accuracy drop: the "
    "fraction of each class's samples no longer classified correctly when the community is closed."
)

members = paged(explore.MEMBERS, model, 5000, uid=uid)
shape = image_shape(model)
if shape:
    pictures = st.columns(3)
    if detail["prototype"]:
        with pictures[0]:
            crisp(pixels(detail["prototype"], shape), "prototype: the mean of its top samples")
    if detail["layer"] == 0:
        mask = np.zeros(layers[0]["width"])
        mask[[m["index"] for m in members]] = 1.0
        with pictures[1]:
            crisp(pixels(mask, shape), "its member pixels (white)", stretch=False)
    source = params_of(model).get("source")
    if source and detail["top_samples"]:
        from neurocypher.app.intervention import reloaded_data

        data = reloaded_data(source["data"])
        with pictures[2]:
            grid([pixels(data.X[i], shape) for i in detail["top_samples"]], "its top samples (strongest first)")

st.markdown(f"**Members** ({len(members)}; click one to open its page)")
show_table(members, height=min(400, 35 * (len(members) + 1) + 3))

with st.expander("Close this community now (reruns the closing on the stored model)"):
    st.caption(
        "Reloads the model and data it was ingested from, closes the members (sets them to their mean, or to 0 for "
        "a model ingested with --no-close-to-mean) and measures each class's accuracy; next to it, the change stored "
        "at ingest."
    )
    if st.button("Close it", key="close_live"):
        from neurocypher.app.intervention import close_live

        live = shown_errors(
            lambda: close_live(
                store(),
                model,
                detail["layer"],
                [m["index"] for m in members],
                [m["mean"] for m in members],
                len(names),
            )
        )
        if live is not None:
            change = pd.DataFrame(
                {
                    "class": per_class["class"],
                    "accuracy": live["before"],
                    "closed": live["after"],
                    "drop now": live["before"] - live["after"],
                    "drop stored": per_class["drop"],
                }
            )
            show_table(change.to_dict("records"), key="live_change")

if st.toggle("Drill down: the neuron graph of this community", key="drill"):
    strongest = st.slider("Strongest flows in and out", 10, 500, 40, 10, key="neuron_links")
    neuron_flows = paged(explore.MEMBER_FLOWS_IN, model, strongest, uid=uid) + paged(
        explore.MEMBER_FLOWS_OUT, model, strongest, uid=uid
    )
    st.caption("Orange: its members. Edge width: flow bits. Click a neuron to open its page.")
    opened = draw(neuron_elements(neuron_flows, {m["neuron"] for m in members}, layers), key=f"neurons-{uid}")
    if opened:
        open_uid(opened)
