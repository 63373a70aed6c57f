"""Tables of answers: every uid a link to its page, numbers to 4 significant digits, lists written
out in full, and a console's nodes and relationships spread into columns."""

import re

import pandas as pd
import streamlit as st

from app.explorer import address
from app.graphs import short

UID = re.compile(r"[^/]+/(?:[^/]+/)?L\d+/c?\d+")  # a neuron's (`m/L1/3`) or a community's (`m/method/L1/c0`)
SHOWN = r"=[^/&]+/([^&]+)$"  # a link's text: the uid after its model id
HIDDEN = {"model_id", "generation"}  # bookkeeping properties of every node


def is_uid(value) -> bool:
    return isinstance(value, str) and UID.fullmatch(value) is not None


def cell(value):
    """A list as one line of text (uids shortened, numbers to 4 significant digits)."""
    if isinstance(value, list):
        if all(is_uid(v) for v in value) and value:
            return " → ".join(short(v) for v in value)
        return ", ".join(f"{v:.4g}" if isinstance(v, float) else str(cell(v)) for v in value)
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
    """Rows as a table: a uid column links each row to its community or neuron page."""
    frame = pd.DataFrame(rows)
    config = {}
    for column in frame.columns:
        values = [v for v in frame[column] if v is not None and v == v]
        if values and all(is_uid(v) for v in values):
            frame[column] = [address(v) if is_uid(v) else None for v in frame[column]]
            config[column] = st.column_config.LinkColumn(column, display_text=SHOWN, help="opens its page")
        elif values and all(isinstance(v, (list, dict)) for v in values):
            frame[column] = [cell(v) for v in frame[column]]
        elif values and all(isinstance(v, float) for v in values):
            config[column] = st.column_config.NumberColumn(column, format="%.4g")
    st.dataframe(frame, hide_index=True, width="stretch", column_config=config, key=key, height=height)
