"""Community graph: one model's communities of one method, layer by layer, coloured by how much
they relay a chosen class, with that class's chain (and the modules or circuit made for it)
highlighted; below, the selected community's page. The address holds the whole view."""

import altair as alt
import numpy as np
import pandas as pd
import streamlit as st

from app.explorer import (
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
from app.graphs import community_elements, draw, name_of, neuron_elements
from app.pictures import crisp, grid, heatmap, pixels
from app.tables import show_table
from queries import explore
from queries.chains import DEFAULT_SCORE, SCORE_MEANING, fidelity_text

OWN_CLASS = {"relay": "modules", "neurflow": "circuit"}  # methods whose communities are made for one class


def concept(c: dict) -> str:
    """What a community responds to, in words (a community of constant neurons responds to nothing)."""
    return "inactive: its neurons are constant on the probe set" if c["dead"] else c["label"]


def layer_range(layers: list[dict]) -> tuple[int, int]:
    """The layers shown, from the address (`?layers=1-3`) or a slider, written back to the address."""
    indexes = [lay["index"] for lay in layers]
    wanted = st.query_params.get("layers", "")
    low, _, high = wanted.partition("-")
    if (
        f"{low}-{high}" == wanted
        and {low, high} <= {str(i) for i in indexes}
        and wanted != st.session_state.get("address.layers")
    ):
        st.session_state["layer_range"] = (int(low), int(high))
    first, last = st.select_slider(
        "Layers",
        options=indexes,
        value=st.session_state.get("layer_range", (indexes[0], indexes[-1])),
        key="layer_range",
        format_func=lambda i: f"L{i} {layers[i]['name']}",
    )
    st.query_params["layers"] = st.session_state["address.layers"] = f"{first}-{last}"
    return first, last


st.title("Community graph")
model = pick_model()
method = pick_method(model) if model else None
if not method:
    st.stop()
layers = layers_of(model)
names = class_names(model)
left, middle, right = st.columns(3)
with left:
    relay_class = pick_class(model)
with middle:
    colour = choose("Colour nodes by", ["relay bits for the class", "role"], "colour")
with right:
    first, last = layer_range(layers)

stored = paged(explore.COMMUNITIES, model, 10_000, method=method)
communities = [{**c, "concept": concept(c)} for c in stored if first <= c["layer"] <= last]
strongest = paged(explore.COMMUNITY_FLOWS, model, 1, method=method, min_bits=0.0)
top_bits = float(np.ceil(strongest[0]["bits"])) if strongest else 1.0
a, b = st.columns(2)
min_bits = a.slider(
    "Least flow of a link (bits)",
    0.0,
    top_bits,
    0.0,
    top_bits / 100,
    key="min_bits",
    help="A link's flow is the sum of the flow bits (mutual information) of every member-to-member neuron edge "
    f"between the two communities; the strongest link here carries {top_bits:.3g} bits.",
)
most = b.number_input(
    "Most links drawn (strongest first; fetched a page at a time)", 50, 20000, 1000, 50, key="most_links"
)
flows = paged(explore.COMMUNITY_FLOWS, model, int(most), method=method, min_bits=float(min_bits))
chain_rows = ask("relay-path", model=model, **{"class": relay_class}, method=method, limit=1)
chain = chain_rows[0]["chain"] if chain_rows else []
made_for = {c["uid"] for c in communities if method in OWN_CLASS and c["class"] == relay_class}
last_layer = layers[-1]["index"]
legend, attribution = st.columns([3, 1]) if image_shape(model) else (st.container(), None)
with legend:
    if chain:
        st.markdown(
            f"**Relay chain for class {relay_class} ({names[relay_class]})**: "
            + " → ".join(f"`{name_of(uid, last_layer)}`" for uid in chain)
            + f" (score {chain_rows[0]['score']:+.3g}: {SCORE_MEANING[DEFAULT_SCORE]})"
        )
        st.caption("Causal check: " + fidelity_text(chain_rows[0], relay_class))
    else:
        st.caption(f"No chain of {method} communities relays class {relay_class} through every layer.")
    st.caption(
        "Node size: members. "
        + (
            f"Colour: relay bits for class {relay_class} (white 0 to dark red, the most here; conditional mutual "
            "information between the community's state and the class, in bits). "
            if colour != "role"
            else "Colour: role (red key: closing it costs accuracy; purple noise: closing it helps; grey irrelevant). "
        )
        + "Edge width: flow bits. Orange: the relay chain"
        + (f" and the {OWN_CLASS[method]} made for the class" if method in OWN_CLASS else "")
        + ". Click a community to open it."
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
elements = community_elements(
    communities, flows, layers, set(chain) | made_for, relay_class if colour != "role" else None
)
clicked = draw(elements, key=f"graph-{model}-{method}")

uids = [c["uid"] for c in communities]
if st.session_state.get("view") != (model, method, relay_class):  # a new view starts at its relay chain
    st.session_state.pop("community", None)
st.session_state["view"] = (model, method, relay_class)
if not uids:
    st.info(f"No {method} communities in layers {first}..{last}.")
    st.stop()
if clicked in uids and clicked != st.session_state.get("clicked"):
    st.session_state["clicked"] = st.session_state["community"] = clicked
    st.query_params["community"] = st.session_state["address.community"] = clicked
uid = choose(
    "Community",
    uids,
    "community",
    default=chain[0] if chain and chain[0] in uids else uids[0],
    format_func=lambda u: name_of(u, last_layer),
)

detail = read(explore.COMMUNITY_DETAIL, model, uid=uid)[0]
st.subheader(f"{name_of(uid, last_layer)}: {concept(detail)}")
a, b, c = st.columns(3)
a.metric("Size", detail["size"], help="member neurons (primary memberships)")
b.metric("Role", detail["role"], help="key: closing it costs accuracy; noise: closing it helps; irrelevant otherwise")
c.metric(
    "Accuracy lost when closed",
    f"{detail['acc_drop']:+.3f}",
    help="fraction of accuracy (0..1) lost when its members are set to 0 (+0.05 = five points lost)",
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
        .encode(x=alt.X("class:N", sort=None), y=alt.Y(f"{field}:Q", title=title), tooltip=["class", field]),
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
            crisp(pixels(mask, shape), "its member pixels (white)")
    source = params_of(model).get("source")
    if source and detail["top_samples"]:
        from app.intervention import reloaded

        _, data = reloaded(tuple(sorted(source.items())))
        with pictures[2]:
            grid([pixels(data.X[i], shape) for i in detail["top_samples"]], "its top samples (strongest first)")

st.markdown(f"**Members** ({len(members)}; click one to open its page)")
show_table(members, height=min(400, 35 * (len(members) + 1) + 3))

with st.expander("Close this community now (reruns the closing on the stored model)"):
    st.caption(
        "Reloads the model and data it was ingested from, sets the members to 0 and measures each class's "
        "accuracy; next to it, the change stored at ingest."
    )
    if st.button("Close it", key="close_live"):
        from app.intervention import close_live

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
