"""Neuron: one neuron's statistics, class means, memberships, strongest flows in and out, NeurFlow
core flags and relay scores; every uid links to its page. Address: `/neuron?model=M&uid=M/L1/3`."""

import altair as alt
import pandas as pd
import streamlit as st

from neurocypher.app.explorer import ask, choose, class_names, layers_of, open_uid, pick_model, read, shown_errors
from neurocypher.app.graphs import draw, layer_of, layer_title, name_of, neuron_elements, path_of
from neurocypher.app.tables import figure, show_table
from neurocypher.queries import explore

st.title("Neuron")
model = pick_model()
if not model:
    st.stop()
layers = layers_of(model)
wanted = st.query_params.get("uid", "")
left, right = st.columns(2)
try:
    default_layer, default_index = layer_of(wanted), int(wanted.rsplit("/", 1)[-1])
    known = 0 <= default_index < layers[default_layer]["width"]
except (ValueError, IndexError):
    known = False
linked = wanted != st.session_state.get("address.uid")  # a link or a click to this neuron: its pickers follow
if known and linked:
    st.session_state["neuron_layer"], st.session_state["neuron_index"] = default_layer, default_index
if not known:
    default_layer, default_index = min(1, len(layers) - 1), 0
    if wanted and linked:
        st.error(f"no neuron {wanted} in {model}: pick a layer and an index below")
with left:
    layer = choose(
        "Layer",
        [lay["index"] for lay in layers],
        "neuron_layer",
        default=default_layer,
        format_func=lambda i: f"{layer_title(layers[i])} ({layers[i]['width']} neurons)",
    )
width = layers[layer]["width"]
st.session_state["neuron_index"] = min(st.session_state.get("neuron_index", default_index), width - 1)
index = right.number_input(f"Index (0..{width - 1})", 0, width - 1, key="neuron_index")
uid = f"{model}/L{layer}/{index}"
st.query_params["uid"] = st.session_state["address.uid"] = uid

found = read(explore.NEURON, model, uid=uid)
if not found:
    st.error(f"no neuron {uid} in {model}: pick a layer and an index above")
    st.stop()
neuron = found[0]
rows = shown_errors(lambda: ask("neuron", model=model, uid=uid, limit=10))
names = class_names(model)
st.subheader(f"{name_of(uid, layers[-1]['index'])} in {layer_title(layers[layer])} ({neuron['kind']})")
st.caption(f"Module: `{path_of(layers[layer])}`")
stats = st.columns(5)
stats[0].metric("Mean", figure(neuron["mean"]), help="mean activation over the probe set")
stats[1].metric("Std", figure(neuron["std"]), help="standard deviation of the activation")
stats[2].metric("Entropy", figure(neuron["entropy"], "bits"), help="of its activation in 8 equal-frequency bins")
stats[3].metric("Betweenness", figure(neuron["betweenness"]), help="share of shortest flow paths through it")
stats[4].metric("Constant", "yes" if neuron["constant"] else "no", help="the same value on every probe sample")

per_class = pd.DataFrame({"class": [f"{i}: {n}" for i, n in enumerate(names)]})
for column, field in (("mean activation", "class_means"), ("relay score", "relay_score"), ("core", "core")):
    if neuron[field] and not (field == "relay_score" and neuron["constant"]):  # a constant carries no information
        per_class[column] = neuron[field]
chart, flags = st.columns([3, 2])
chart.altair_chart(
    alt.Chart(per_class, height=240)
    .mark_bar()
    .encode(
        x=alt.X("class:N", sort=None),
        y=alt.Y("mean activation:Q", title="mean activation"),
        tooltip=list(per_class.columns),
    ),
    width="stretch",
)
with flags:
    st.markdown("**Per class**")
    st.caption(
        "relay score: the relay method's score of the neuron for the class (higher: it carries more of the class); "
        "core: NeurFlow counts it among the class's core neurons."
        + (" A constant neuron carries no information, so it has no relay score." if neuron["constant"] else "")
    )
    show_table(per_class.to_dict("records"))

if rows:
    row = rows[0]
    st.markdown("**Memberships** (one per method; primary: the community it is drawn in)")
    show_table(row["memberships"])
    inflow, outflow = st.columns(2)
    for column, title, flows in ((inflow, "in", row["flows_in"]), (outflow, "out", row["flows_out"])):
        with column:
            st.markdown(f"**Strongest flows {title}** (bits: mutual information; share: of the neuron's flow)")
            if flows:
                show_table(flows)
            else:
                st.caption("none")
    flows = [{"source": f["neuron"], "target": uid, "bits": f["bits"]} for f in row["flows_in"]]
    flows += [{"source": uid, "target": f["neuron"], "bits": f["bits"]} for f in row["flows_out"]]
    if flows:
        st.caption("Its strongest flows as a graph (edge width: bits; click a neuron to open it).")
        opened = draw(neuron_elements(flows, {uid}, layers), key=f"neuron-{uid}")
        if opened and opened != uid:
            open_uid(opened)
