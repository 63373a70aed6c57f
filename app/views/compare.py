"""Compare: two or more models side by side: headline scores, communities per layer (layers aligned
by relative depth), relay heatmaps (class x community, in layer order), matched communities, and
the relay chains for one class next to each other. The address holds models, method and class."""

import altair as alt
import pandas as pd
import streamlit as st

from neurocypher.app.explorer import (
    SCORES,
    ask,
    choose,
    class_names,
    layers_of,
    model_ids,
    open_uid,
    paged,
    read,
    read_all,
    shared_classes,
    shared_methods,
    shown_errors,
    store,
)
from neurocypher.app.graphs import draw, layer_title, name_of, path_elements, short
from neurocypher.app.tables import chain_caption, figure, show_table
from neurocypher.ingest.matching import match_communities, store_matches
from neurocypher.queries import explore
from neurocypher.queries.chains import DEFAULT_SCORE, fidelity_text

EVENTS = {  # evolution's events, in words, and their colours
    "first": ("the first checkpoint", "#9e9e9e"),
    "continued": ("continued from one community", "#4c78a8"),
    "appeared": ("new: no community before it overlaps it", "#e45756"),
    "split": ("one of the parts of a community that split", "#f58518"),
    "merged": ("two or more communities merged into it", "#54a24b"),
}


def series_timeline(series: list[dict]) -> None:
    """A checkpoint series as a timeline: accuracy and training metrics per step, and per step and
    layer the community on the chosen class's relay chain and how it came about (`evolution`)."""
    names = [s["series"] for s in series]
    chosen = choose("Series", names, "series")
    info = series[names.index(chosen)]
    left, right = st.columns(2)
    with left:
        method = choose("Community method", info["methods"].split(","), "method", default="relay")
    with right:
        k = choose("Class", list(range(info["classes"])), "class")
    points = [row["checkpoint"] for row in read(explore.CHECKPOINTS, chosen)]
    metrics = ["accuracy"] + sorted({key for p in points for key in p if key.startswith("metric_")})
    for column, measure in zip(st.columns(len(metrics)), metrics):
        column.altair_chart(metric_chart(points, measure), width="stretch")
    rows = shown_errors(lambda: ask("evolution", model=chosen, method=method, **{"class": k}))
    if not rows:
        st.info(f"No checkpoint of {chosen} has a relay-path chain for class {k} with {method}.")
        return
    cells = pd.DataFrame(
        [{**r, "community": short(r["community"]), "from": ", ".join(map(short, r["sources"]))} for r in rows]
    )
    colours = alt.Scale(domain=list(EVENTS), range=[colour for _, colour in EVENTS.values()])
    st.altair_chart(
        alt.Chart(
            cells,
            title=f"class {k}'s relay-path chain ({method}), checkpoint by checkpoint",
            height=32 * (cells["layer"].max() + 1),
        )
        .mark_rect(stroke="white", strokeWidth=2)
        .encode(
            x=alt.X("step:O", title="training step"),
            y=alt.Y("layer:O", title="layer", sort="descending"),
            color=alt.Color("event:N", scale=colours, title="how it came about"),
            tooltip=["step", "layer", "community", "label", "event", "from"],
        ),
        width="stretch",
    )
    st.caption(" ".join(f"**{event}**: {text}." for event, (text, _) in EVENTS.items()))
    show_table(rows)


def metric_chart(points: list[dict], measure: str) -> alt.Chart:
    """One measure of a series' checkpoints against the training step, on its own labelled axis; the
    steps on a log scale (where none is 0), so that early checkpoints are not crammed together."""
    frame = pd.DataFrame([{"step": p["step"], measure: p.get(measure)} for p in points])
    name = measure.removeprefix("metric_").replace("_", " ")
    accuracy = measure == "accuracy"
    steps = alt.Scale(type="log" if frame["step"].min() > 0 else "symlog")
    return (
        alt.Chart(frame, title="probe accuracy per checkpoint" if accuracy else f"{name} per checkpoint", height=220)
        .mark_line(point=True)
        .encode(
            x=alt.X("step:Q", title="training step (log scale)", scale=steps),
            y=alt.Y(
                f"{measure}:Q",
                title="accuracy (fraction)" if accuracy else name,
                scale=alt.Scale(domain=[0, 1]) if accuracy else alt.Undefined,
            ),
            tooltip=["step", alt.Tooltip(f"{measure}:Q", format=".3g")],
        )
    )


st.title("Compare models")
series = read_all(explore.SERIES)
VIEWS = ["models side by side", "a training series"]
if series and st.radio("Compare", VIEWS, index=int("series" in st.query_params), horizontal=True) == VIEWS[1]:
    series_timeline(series)
    st.stop()
st.query_params.pop("series", None)
ids = model_ids()
linked = list(dict.fromkeys(m for m in st.query_params.get("models", "").split(",") if m in ids))  # once each
chosen = st.multiselect(
    "Models", ids, default=linked or st.session_state.get("compare_models") or ids[:2], key="compared"
)
st.query_params["models"] = ",".join(chosen)
if len(chosen) < 2:
    st.info("Choose at least two models (or tick them on the Models page).")
    st.stop()
left, right = st.columns(2)
methods = shared_methods(chosen)
if not methods:
    st.info("These models share no community method; ingest them with a common one.")
    st.stop()
with left:
    method = choose("Community method", methods, "method", default="innersight")
names = class_names(chosen[0])
with right:
    relay_class = choose(
        "Class", list(range(shared_classes(chosen))), "class", format_func=lambda c: f"{c}: {names[c]}"
    )

rows = shown_errors(lambda: ask("compare", models=chosen, method=method, **{"class": relay_class}))
if rows is None:
    st.stop()
show_table([{k: v for k, v in r.items() if k != "communities_per_layer"} for r in rows])
st.caption(" ".join(f"**{name}**: {text}." for name, text in SCORES.items()))

st.subheader("Communities per layer")
counts = []
for r in rows:
    layers = layers_of(r["model"])
    deepest = max(1, layers[-1]["index"])
    counts += [
        {"model": r["model"], "depth": layer / deepest, "layer": layer_title(layers[layer]), "communities": n}
        for layer, n in r["communities_per_layer"]
    ]
if counts:
    st.altair_chart(
        alt.Chart(pd.DataFrame(counts))
        .mark_line(point=alt.OverlayMarkDef(size=80))
        .encode(
            x=alt.X("depth:Q", title="relative depth (0 input, 1 class scores)", scale=alt.Scale(domain=[0, 1])),
            y=alt.Y("communities:Q", title="communities in the layer"),
            color="model:N",
            tooltip=["model", "layer", "communities"],
        ),
        width="stretch",
    )

st.subheader(f"Relay chains for class {relay_class}")
for row in rows:  # one under the other: each graph gets the full width, so its labels stay readable
    st.markdown(f"**{row['model']}**")
    chain = ask("relay-path", model=row["model"], method=method, limit=1, **{"class": relay_class})
    if chain:
        last = layers_of(row["model"])[-1]["index"]
        st.markdown(" → ".join(f"`{name_of(u, last)}`" for u in chain[0]["chain"]))
        hidden = zip(chain[0]["chain"][1:-1], chain[0]["bits"][1:-1])
        st.caption(
            chain_caption(chain[0], relay_class, DEFAULT_SCORE)
            + " Relay bits of its hidden communities: "
            + ", ".join(f"{name_of(u, last)} {figure(b, 'bits')}" for u, b in hidden)
            + ". Causal check: "
            + fidelity_text(chain[0], relay_class)
            + "."
        )
        opened = draw(path_elements([chain[0]["chain"]], layers_of(row["model"])), key=f"chain-{row['model']}")
        if opened:
            open_uid(opened)
    else:
        st.caption("no chain relays this class through every layer")

st.subheader("Relay bits per community (class x community)")
st.caption(
    "Conditional mutual information (bits) between a hidden community's state and each class; columns in layer "
    "order. The input and output communities are left out: they hold every class's information and would set the "
    "scale."
)
for column, model in zip(st.columns(len(chosen)), chosen):
    last = layers_of(model)[-1]["index"]
    communities = [c for c in paged(explore.COMMUNITIES, model, 2000, method=method) if 0 < c["layer"] < last]
    order = [short(c["uid"]) for c in communities]
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
                    x=alt.X("community:N", sort=order),
                    y="class:O",
                    color=alt.Color("bits:Q", title="relay bits", scale=alt.Scale(scheme="viridis")),
                    tooltip=["community", "class", alt.Tooltip("bits:Q", format=".3g")],
                ),
                width="stretch",
            )

st.subheader("Matched communities")
st.caption(
    "Per layer (input with input, output with output, hidden layers by closest relative depth), communities "
    "paired by the correlation of their class profiles (Hungarian matching); a pair counts as a match only when "
    "the correlation is positive."
)
a, b = st.columns(2)
first = a.selectbox("Model A", chosen, key="match_a")
second = b.selectbox("Model B", [m for m in chosen if m != first], key="match_b")


def matched() -> tuple[list[dict], list[dict]]:
    """The pairs of the two models' communities, and those that match (positive correlation),
    stored as MATCHES where the backend can (Neo4j)."""
    pairs = match_communities(store(), first, second, method)
    kept = [m for m in pairs if m["similarity"] > 0]
    store_matches(store(), kept)
    return pairs, kept


found = shown_errors(matched)
if found is not None:
    matches, kept = found
    show_table(kept)
    if len(kept) < len(matches):
        st.caption(f"{len(matches) - len(kept)} pair(s) with correlation 0 or below are not matches and are left out.")
