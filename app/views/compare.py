"""Compare: two or more models side by side: headline scores, communities per layer, relay heatmaps
(class x community), matched communities, and the relay chains for one class next to each other."""

import altair as alt
import pandas as pd
import streamlit as st

from app.explorer import ask, class_names, methods_of, model_ids, paged, shown_errors, store
from app.graphs import draw, path_elements, short
from queries import explore
from queries.matching import match_communities, store_matches

st.title("Compare models")
ids = model_ids()
linked = [m for m in st.query_params.get("models", "").split(",") if m in ids]
chosen = st.multiselect(
    "Models", ids, default=linked or st.session_state.get("compare_models") or ids[:2], key="compared"
)
st.query_params["models"] = ",".join(chosen)
if len(chosen) < 2:
    st.info("Choose at least two models (or tick them on the Models page).")
    st.stop()
left, right = st.columns(2)
shared_methods = [m for m in methods_of(chosen[0]) if all(m in methods_of(other) for other in chosen[1:])]
if not shared_methods:
    st.info("These models share no community method; ingest them with a common one.")
    st.stop()
method = left.selectbox("Community method", shared_methods, key="compare_method")
shared = min(len(class_names(m)) for m in chosen)
names = class_names(chosen[0])
relay_class = right.selectbox("Class", range(shared), key="compare_class", format_func=lambda c: f"{c}: {names[c]}")

rows = shown_errors(lambda: ask("compare", models=chosen, method=method, **{"class": relay_class}))
if rows is None:
    st.stop()
st.dataframe(pd.DataFrame(rows).drop(columns=["communities_per_layer", "top_chain"]), hide_index=True, width="stretch")

st.subheader("Communities per layer")
counts = pd.DataFrame(
    [
        {"model": r["model"], "layer": f"L{layer}", "communities": n}
        for r in rows
        for layer, n in r["communities_per_layer"]
    ]
)
if len(counts):
    st.altair_chart(
        alt.Chart(counts).mark_bar().encode(x="layer:N", xOffset="model:N", y="communities:Q", color="model:N"),
        width="stretch",
    )

st.subheader(f"Relay chains for class {relay_class}")
for column, row in zip(st.columns(len(chosen)), rows):
    with column:
        st.markdown(f"**{row['model']}**")
        chain = ask("relay-path", model=row["model"], method=method, limit=1, **{"class": relay_class})
        if chain:
            st.markdown(" → ".join(f"`{short(u)}` ({b:.2f})" for u, b in zip(chain[0]["chain"], chain[0]["bits"])))
            draw(path_elements([chain[0]["chain"]]), key=f"chain-{row['model']}", height=220)
        else:
            st.caption("no chain relays this class through every layer")

st.subheader("Relay bits per community (class x community)")
for column, model in zip(st.columns(len(chosen)), chosen):
    communities = paged(explore.COMMUNITIES, model, 2000, method=method)
    cells = pd.DataFrame(
        [
            {"community": short(c["uid"]), "class": k, "bits": bits}
            for c in communities
            for k, bits in enumerate(c["relay_bits"] or [])
        ]
    )
    with column:
        st.markdown(f"**{model}**")
        if len(cells):
            st.altair_chart(
                alt.Chart(cells)
                .mark_rect()
                .encode(
                    x=alt.X("community:N", sort=None),
                    y="class:O",
                    color=alt.Color("bits:Q", scale=alt.Scale(scheme="viridis")),
                    tooltip=["community", "class", "bits"],
                ),
                width="stretch",
            )

st.subheader("Matched communities")
st.caption("Per layer, communities paired by the correlation of their class profiles (Hungarian matching).")
a, b = st.columns(2)
first = a.selectbox("Model A", chosen, key="match_a")
second = b.selectbox("Model B", [m for m in chosen if m != first], key="match_b")


def matched() -> list[dict]:
    """The matched communities of the two models, stored as MATCHES where the backend can (Neo4j)."""
    found = match_communities(store(), first, second, method)
    store_matches(store(), found)
    return found


matches = shown_errors(matched)
if matches is not None:
    st.dataframe(pd.DataFrame(matches), hide_index=True, width="stretch")
