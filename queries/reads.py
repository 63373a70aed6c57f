"""Reads that the package's own commands make of one stored model (the questions users ask are in
`queries.library`, the explorer's views in `queries.explore`)."""

import json

from neurocypher.errors import UserError, no_such_model

from . import explore
from .schema import on_complete_model

NEURFLOW_GROUPS = on_complete_model("""
MATCH (n:Neuron {generation: m.generation})-[mo:MEMBER_OF]->(c:Community {generation: m.generation, method: 'neurflow'})
WHERE mo.primary = 1
WITH c, n ORDER BY n.index
RETURN c.uid AS group, c.layer AS layer, c.label AS label, collect(n.index) AS members,
       collect(n.mean) AS means, collect(n.std) AS stds
ORDER BY group""")


def model_params(store, model: str) -> dict:
    """What `model` was ingested with (its `params`: the analysis options and, under `source`, the
    model and data it came from); a UserError when it is not stored."""
    rows = store.read(explore.MODEL_PARAMS, {"model": model}, model=model)
    if not rows:
        raise no_such_model(model)
    return json.loads(rows[0]["params"])


def model_source(params: dict, model: str, to: str) -> dict:
    """Where `model` came from (its stored `params`' `source`: model file, weights, data), to reload
    it and `to` do something; a UserError when it was stored without one."""
    if not params.get("source"):
        raise UserError(f"{model} was stored without its model and data files; ingest it again to {to}")
    return params["source"]


def neurflow_groups(store, model: str) -> list[dict]:
    """`model`'s NeurFlow groups by uid: `group`, `layer`, `label`, and its primary members'
    `members` (indexes), `means` and `stds`, in index order; empty without NeurFlow."""
    return store.read(NEURFLOW_GROUPS, {"model": model}, model=model)
