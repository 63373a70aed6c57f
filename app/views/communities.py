"""Community graph: one model's communities of one method, layer by layer, with the relay chain for a
class highlighted; select a community for its evaluation, members and neuron graph."""

import numpy as np
import pandas as pd
import streamlit as st

from app.explorer import ask, class_names, image_shape, paged, pick_class, pick_method, pick_model, read
from app.graphs import community_elements, draw, neuron_elements, short
from queries import explore

st.title("Community graph")
model = pick_model()
method = pick_method(model) if model else None
if not method:
    st.stop()
layers = read(explore.LAYERS, model)
left, middle, right = st.columns(3)
with left:
    relay_class = pick_class(model)
with middle:
    min_bits = st.slider("Least flow bits of a link", 0.0, 2.0, 0.0, 0.01, key="min_bits")
with right:
    first, last = st.select_slider(
        "Layers",
        options=[lay["index"] for lay in layers],
        value=(layers[0]["index"], layers[-1]["index"]),
        key="layer_range",
        format_func=lambda i: f"L{i} {layers[i]['name']}",
    )
most = st.number_input(
    "Most links drawn (strongest first; fetched a page at a time)", 50, 20000, 1000, 50, key="most_links"
)

communities = [c for c in paged(explore.COMMUNITIES, model, 10_000, method=method) if first <= c["layer"] <= last]
flows = paged(explore.COMMUNITY_FLOWS, model, int(most), method=method, min_bits=float(min_bits))
chain_rows = ask("relay-path", model=model, **{"class": relay_class}, method=method, limit=1)
chain = chain_rows[0]["chain"] if chain_rows else []
names = class_names(model)
if chain:
    st.markdown(
        f"**Relay chain for class {relay_class} ({names[relay_class]})**: "
        + " → ".join(f"`{short(uid)}`" for uid in chain)
        + f" (score {chain_rows[0]['score']:.2f} bits)"
    )
else:
    st.caption(f"No chain of {method} communities relays class {relay_class} through every layer.")
st.caption(
    "Node size: community size. Colour: role (red key, purple noise, grey irrelevant). "
    "Edge width: flow bits. Orange: the relay chain. Click a community to open it."
)
clicked = draw(community_elements(communities, flows, relay_class, chain), key=f"graph-{model}-{method}")
uids = [c["uid"] for c in communities]
view = (model, method, relay_class)
if clicked in uids:
    st.session_state["community"] = clicked
elif st.session_state.get("community") not in uids or st.session_state.get("view") != view:
    st.session_state["community"] = chain[0] if chain and chain[0] in uids else (uids[0] if uids else None)
st.session_state["view"] = view  # a new model, method or class starts at its relay chain
if not uids:
    st.stop()
uid = st.selectbox("Community", uids, key="community", format_func=short)

detail = read(explore.COMMUNITY_DETAIL, model, uid=uid)[0]
st.subheader(f"{short(uid)}: {detail['label']}")
a, b, c = st.columns(3)
a.metric("Size", detail["size"])
b.metric("Role", detail["role"])
c.metric("Accuracy lost when closed", f"{detail['acc_drop']:+.3f}")
per_class = pd.DataFrame(
    {
        "relay bits": detail["relay_bits"] or [0.0] * len(names),
        "accuracy drop": detail["class_acc_drop"] or [0.0] * len(names),
    },
    index=pd.Index([f"{i}: {n}" for i, n in enumerate(names)], name="class"),
)
plots, picture = st.columns([3, 1])
with plots:
    st.bar_chart(per_class, horizontal=False, stack=False, height=260)
with picture:
    shape = image_shape(model)
    if shape and detail["prototype"]:
        image = np.asarray(detail["prototype"], dtype=float).reshape(shape)
        span = np.ptp(image) or 1.0
        st.image((image - image.min()) / span, caption="prototype: mean of its top samples", width=160, clamp=True)

members = paged(explore.MEMBERS, model, 5000, uid=uid)
st.dataframe(pd.DataFrame(members), hide_index=True, width="stretch", height=200)
if st.toggle("Drill down: the neuron graph of this community", key="drill"):
    strongest = st.slider("Strongest flows in and out", 10, 500, 60, 10, key="neuron_links")
    neuron_flows = paged(explore.MEMBER_FLOWS_IN, model, strongest, uid=uid) + paged(
        explore.MEMBER_FLOWS_OUT, model, strongest, uid=uid
    )
    draw(neuron_elements(neuron_flows, {m["neuron"] for m in members}), key=f"neurons-{uid}", height=440)
