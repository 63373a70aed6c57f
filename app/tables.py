"""Tables of answers: every uid a link to its page, numbers to 3 significant digits, known columns
with their unit on hover, lists written out in full, and a console's nodes and relationships spread
into columns; `figure` writes one number the same way."""

import re

import numpy as np
import pandas as pd
import streamlit as st

from neurocypher.app.explorer import address
from neurocypher.app.graphs import short
from neurocypher.queries.chains import SCORE_UNITS, score_meaning

UID = re.compile(r"[^/]+/(?:[^/]+/)?L\d+/c?\d+")  # a neuron's (`m/L1/3`) or a community's (`m/method/L1/c0`)
SHOWN = r"=[^/&]+/([^&]+)$"  # a link's text: the uid after its model id
HIDDEN = {"model_id", "generation"}  # bookkeeping properties of every node
UNITS = {  # what a column of an answer holds, and its unit (shown on hover)
    "bits": "bits: mutual information (flow) or relay information",
    "acc_drop": "fraction of accuracy (0..1) lost when the community is closed; negative: closing it helps",
    "score": "a relay chain's score; "
    + "; ".join(f"by {s} ({SCORE_UNITS[s]}): {score_meaning(s)}" for s in SCORE_UNITS)
    + "; negative: they matter more to another class",
    "flow": "a relay chain's tie-break (mean flow bits per member edge, summed) or a neuron path's product of shares",
    "share": "fraction of the target's incoming flow bits",
    "p": "membership probability (0..1)",
    "drop_class": "fraction of the class's accuracy lost with the whole chain closed",
    "drop_other": "the largest fraction of accuracy another class loses with the chain closed",
    "drop_random": "the class's median loss with random chains of the same sizes closed",
    "specificity": "drop_class / drop_other (faithful from 3)",
    "vs_random": "drop_class / drop_random (faithful from 3)",
    "entropy": "bits, of the activation in the analysis's equal-frequency bins (8 unless --bins)",
    "relay_score": "the relay method's score of a neuron per class",
}


def is_uid(value) -> bool:
    return isinstance(value, str) and UID.fullmatch(value) is not None


def figure(value, unit: str = "", signed: bool = False) -> str:
    """A number as shown: an integer, or anything from 1,000 on, in full with thousands separators
    (27,330), anything else to 3 significant digits (0.000887, 1.53); "n/a" for none."""
    if value is None or value != value:
        return "n/a"
    sign = "+" if signed else ""
    whole = isinstance(value, (int, np.integer)) and not isinstance(value, bool) or abs(value) >= 1000
    text = f"{value:{sign},.0f}" if whole else f"{value:{sign}.3g}"
    return f"{text} {unit}".strip()


def chain_caption(row: dict, k: int, score: str) -> str:
    """A relay-path row's score in words: its value with its unit, what it sums, what its sign says."""
    scored = len(row["chain"]) - 1  # its input and hidden communities
    sign = (
        f"positive: they matter more to class {k} than to any other class"
        if row["score"] > 0
        else f"negative: they matter more to another class than to class {k}"
        if row["score"] < 0
        else f"0: they matter to class {k} no more than to another class"
    )
    what = score_meaning(score, k, f"{scored} input and hidden communities")
    return f"Score {figure(row['score'], signed=True)} ({SCORE_UNITS[score]}): {what} ({sign})."


def cell(value):
    """A list as one line of text (uids shortened, numbers to 3 significant digits)."""
    if isinstance(value, list):
        if all(is_uid(v) for v in value) and value:
            return " → ".join(short(v) for v in value)
        parts = [figure(v) if isinstance(v, float) else str(cell(v)) for v in value]
        return (" | " if any(", " in part for part in parts) else ", ").join(parts)  # labels have commas
    if isinstance(value, dict):
        return ", ".join(f"{k}: {cell(v)}" for k, v in value.items() if k not in HIDDEN)
    return value


def spread(rows: list[dict]) -> list[dict]:
    """Console rows with every node or relationship (a property map) as one column per property
    (`n.uid`, `n.label`, ...), and every path (a list of nodes) as its uids."""
    out = []
    for row in rows:
        flat = {}
        for column, value in row.items():
            if isinstance(value, dict):
                flat.update({f"{column}.{k}": v for k, v in value.items() if k not in HIDDEN})
            elif isinstance(value, list) and value and all(isinstance(v, dict) and "uid" in v for v in value):
                flat[column] = [v["uid"] for v in value]
            else:
                flat[column] = value
        out.append(flat)
    return out


def show_table(rows: list[dict], key: str | None = None, height: int | str = "auto") -> None:
    """Rows as a table: a uid column links each row to its community or neuron page; a known
    column says what it holds on hover (`UNITS`)."""
    frame = pd.DataFrame(rows)
    config = {}
    for column in frame.columns:
        values = [v for v in frame[column] if v is not None and v == v]
        about = UNITS.get(str(column).rsplit(".", 1)[-1])
        if values and all(is_uid(v) for v in values):
            frame[column] = [address(v) if is_uid(v) else None for v in frame[column]]
            config[column] = st.column_config.LinkColumn(column, display_text=SHOWN, help="opens its page")
        elif values and all(isinstance(v, (list, dict)) for v in values):
            frame[column] = [cell(v) for v in frame[column]]
            config[column] = st.column_config.TextColumn(column, help=about)
        elif values and all(isinstance(v, float) for v in values):
            config[column] = st.column_config.NumberColumn(column, format="%.3g", help=about)
        elif about:
            config[column] = st.column_config.Column(column, help=about)
    st.dataframe(frame, hide_index=True, width="stretch", column_config=config, key=key, height=height)
