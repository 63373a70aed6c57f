"""The named query library: the questions users ask of stored models, as portable Cypher.

Each query has a name, a one-line description, typed parameters with defaults, and its Cypher;
`ask(store, name, **params)` checks the parameters and returns a list of dicts. `relay-path` and
`flow-between` are best-path searches on a DAG (`queries.paths`: communities linked layer to layer,
or neurons), computed from bounded reads of the links they need, so their work does not grow with
the number of paths, (width)^depth, but with the links read. Every query states what it reads as
the model grows (`bound`, listed by `neurocypher query --list`). `texts()` lists every text for the
linter.
"""

import math
import re
from collections.abc import Callable
from dataclasses import dataclass

from neurocypher.errors import UserError, clip, no_such_model, shown

from .chains import ANSWER_ROWS, DEFAULT_SCORE, FIDELITY_COLUMNS, RELAY_PATH_READS, SCORES, relay_path
from .paths import Link, best_paths
from .schema import MIN_OVERLAP, ROLE_THRESHOLD, on_complete_model

REQUIRED = object()
LIMIT_MAX = 1000


@dataclass(frozen=True)
class Param:
    name: str
    kind: type  # int, float, str or list (of str)
    default: object = REQUIRED
    help: str = ""
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()

    def parse(self, value):
        """The value converted to `kind` and checked, or a UserError naming the parameter."""
        try:
            if self.kind is list:
                value = value.split(",") if isinstance(value, str) else list(value)
                value = [str(v).strip() for v in value if str(v).strip()]
            elif self.kind is int and (
                isinstance(value, bool) or (isinstance(value, float) and not value.is_integer())
            ):
                raise ValueError
            else:
                value = self.kind(value)
        except (TypeError, ValueError):
            raise UserError(f"parameter {self.name} must be {self.kind.__name__}, got {shown(value)}") from None
        if self.kind is float and not math.isfinite(value):
            raise UserError(f"parameter {self.name} must be a finite number, got {value}")
        if self.minimum is not None and value < self.minimum or self.maximum is not None and value > self.maximum:
            raise UserError(f"parameter {self.name} must be between {self.minimum} and {self.maximum}, got {value}")
        if self.choices and value not in self.choices:
            raise UserError(f"parameter {self.name} must be one of {', '.join(self.choices)}, got {shown(value)}")
        return value


@dataclass(frozen=True)
class NamedQuery:
    name: str
    description: str
    params: tuple[Param, ...]
    cypher: str | tuple[str, ...]  # a text, or the reads of an answer computed in Python
    order: tuple[str, bool] | None = None  # (column, descending): the order of rows merged from several graphs
    per_model: bool = True  # runs on the graph of parameter `model` (else on every stored model)
    answer: Callable[..., list[dict]] | None = None  # (store, params) -> rows, from the reads in `cypher`
    bound: str = ""  # how much the query reads and returns, as the model grows

    def describe(self) -> str:
        params = ", ".join(p.name if p.default is REQUIRED else f"{p.name}={p.default}" for p in self.params)
        return f"{self.name}({params}): {self.description}"


def _model():
    return Param("model", str, help="model id")


def _class():
    return Param("class", int, help="class index", minimum=0)


def _limit(default=10):
    return Param("limit", int, default, "most rows returned", 1, LIMIT_MAX)


def _method():
    return Param(
        "method",
        str,
        "innersight",
        "community method, one the model was analysed with (its `methods`, listed by the `models` query)",
    )


FLOWS_INTO = on_complete_model("""
MATCH (b:Neuron {generation: m.generation}) WHERE b.uid IN $frontier
MATCH (a)-[r:FLOWS_TO]->(b)
WHERE a.layer > $bottom OR a.uid = $source
RETURN a.uid AS source, a.layer AS layer, b.uid AS target, r.share AS share, r.bits AS bits
LIMIT $most""")


def flow_between(store, params: dict) -> list[dict]:
    """The strongest neuron paths from $source to $target by the product of flow shares: the best
    paths on log share (`queries.paths.best_paths`) over the flow edges into the neurons that reach
    the target, read one step of the walk back from the target at a time (a neuron keeps at most
    `top_k` incoming edges, so each step reads at most top_k x the neurons it reached), down to the
    source's layer. The read starts from the frontier's neurons by their uid index; the neuron at
    the edge's other end has no label, so the server walks the frontier's incoming edges instead of
    scanning every neuron's outgoing ones (FalkorDB: 15 ms against 1.3 s on 1M edges)."""
    model, source, target = params["model"], params["source"], params["target"]
    bottom = _layer_of(source, model, "source")
    layer_of, edges, frontier = {target: _layer_of(target, model, "target")}, {}, [target]
    while frontier:
        read = {"model": model, "frontier": frontier, "bottom": bottom, "source": source, "most": ANSWER_ROWS + 1}
        rows = store.read(FLOWS_INTO, read, model=model)
        frontier = sorted({r["source"] for r in rows if r["source"] not in layer_of and r["source"] != source})
        for r in rows:
            layer_of[r["source"]] = r["layer"]
            edges[(r["source"], r["target"])] = r
        if len(edges) >= ANSWER_ROWS:
            raise UserError(f"flow-between reads at most {ANSWER_ROWS} flow edges; ask for neurons fewer layers apart")
    links = [Link(a, b, math.log(r["share"]) if r["share"] > 0 else -math.inf) for (a, b), r in edges.items()]
    rows = []
    for path in best_paths({source: 0.0}, target, links, layer_of.get, params["limit"]):
        hops = [edges[pair] for pair in zip(path.nodes, path.nodes[1:])]
        rows.append(
            {"path": list(path.nodes), "flow": math.prod(r["share"] for r in hops), "bits": [r["bits"] for r in hops]}
        )
    return rows


MODEL_SHAPE = on_complete_model("""
OPTIONAL MATCH (a:Layer {generation: m.generation})-[:FEEDS]->(b:Layer)
RETURN m.n_layers AS layers, m.n_classes AS classes, collect([a.index, b.index]) AS feeds""")

QUERIES = {
    q.name: q
    for q in [
        NamedQuery(
            "models",
            "the stored models with their headline results",
            (),
            """
MATCH (m:Model) WHERE m.status = 'complete' AND m.kind = 'model'
RETURN m.model_id AS model, m.arch AS arch, m.dataset AS dataset, m.accuracy AS accuracy,
       m.n_neurons AS neurons, m.methods AS methods, m.deletion_auc_attribution AS deletion_attribution,
       m.deletion_auc_random AS deletion_random, m.relay_knockout_rho AS knockout_rho,
       m.fidelity_ratio AS fidelity, m.created_at AS created
ORDER BY created DESC""",
            order=("created", True),
            per_model=False,
            bound="one row per stored model; reads only Model nodes",
        ),
        NamedQuery(
            "relay-path",
            "which communities relay class k from input to output: ranked chains, one community per layer, "
            "with the measured fidelity of the analysis's top chain",
            (
                _model(),
                _class(),
                _method(),
                Param("score", str, DEFAULT_SCORE, "what ranks chains: " + ", ".join(SCORES), choices=tuple(SCORES)),
                Param("min_bits", float, None, "least relay bits of every hidden community (default: no limit)"),
                _limit(5),
            ),
            RELAY_PATH_READS,
            answer=relay_path,
            bound="reads every community and community link of one method once (paged, at most ANSWER_ROWS); "
            "the search is O(limit (V + E) log limit), whatever the depth",
        ),
        NamedQuery(
            "top-relays",
            "communities ranked by their relay bits for a class (those made for another class, such as its "
            "output, left out)",
            (_model(), _class(), _method(), _limit()),
            on_complete_model("""
MATCH (c:Community {generation: m.generation, method: $method})-[r:RELAYS]->(:Class {index: $class})
WHERE c.class IS NULL OR c.class = $class
RETURN c.uid AS community, c.layer AS layer, c.size AS size, r.bits AS bits, r.acc_drop AS acc_drop,
       c.role AS role, c.label AS label
ORDER BY bits DESC, community LIMIT $limit"""),
            bound="one method's communities with a RELAYS link to the class; at most `limit` rows",
        ),
        NamedQuery(
            "community",
            "one community: members, evaluation, per-class relay and accuracy drop, flows, label",
            (_model(), Param("uid", str, help="community uid, e.g. digits-mlp/innersight/L1/c0")),
            on_complete_model("""
MATCH (c:Community {generation: m.generation, uid: $uid})
OPTIONAL MATCH (n:Neuron)-[mo:MEMBER_OF]->(c) WHERE mo.primary = 1
WITH c, n ORDER BY n.index
WITH c, collect(n.uid) AS members
OPTIONAL MATCH (c)-[r:RELAYS]->(k:Class)
WITH c, members, r, k ORDER BY k.index
WITH c, members,
     collect(CASE WHEN k IS NULL THEN null ELSE {class: k.index, bits: r.bits, acc_drop: r.acc_drop} END) AS relays
OPTIONAL MATCH (c)-[o:FLOWS_TO]->(d:Community)
WITH c, members, relays, d, o ORDER BY o.bits DESC, d.uid
WITH c, members, relays,
     collect(CASE WHEN d IS NULL THEN null ELSE {community: d.uid, bits: o.bits, edges: o.edges} END) AS flows_out
OPTIONAL MATCH (e:Community)-[i:FLOWS_TO]->(c)
WITH c, members, relays, flows_out, e, i ORDER BY i.bits DESC, e.uid
WITH c, members, relays, flows_out,
     collect(CASE WHEN e IS NULL THEN null ELSE {community: e.uid, bits: i.bits, edges: i.edges} END) AS flows_in
RETURN c.uid AS community, c.method AS method, c.layer AS layer, c.size AS size, c.role AS role,
       c.acc_drop AS acc_drop, c.label AS label, members, relays, flows_in, flows_out"""),
            bound="one community: its primary members (up to its size), its relays (one per class) and its links",
        ),
        NamedQuery(
            "neuron",
            "one neuron: statistics, memberships, strongest incoming and outgoing flows",
            (_model(), Param("uid", str, help="neuron uid, e.g. digits-mlp/L1/3"), _limit(5)),
            on_complete_model("""
MATCH (n:Neuron {generation: m.generation, uid: $uid})
OPTIONAL MATCH (n)-[mo:MEMBER_OF]->(c:Community)
WITH n, c, mo ORDER BY c.uid
WITH n, collect(CASE WHEN c IS NULL THEN null ELSE {community: c.uid, p: mo.p, primary: mo.primary} END) AS memberships
OPTIONAL MATCH (a:Neuron)-[fi:FLOWS_TO]->(n)
WITH n, memberships, a, fi ORDER BY fi.bits DESC, a.uid
WITH n, memberships,
     collect(CASE WHEN a IS NULL THEN null
             ELSE {neuron: a.uid, bits: fi.bits, share: fi.share} END)[0..$limit] AS flows_in
OPTIONAL MATCH (n)-[fo:FLOWS_TO]->(b:Neuron)
WITH n, memberships, flows_in, b, fo ORDER BY fo.bits DESC, b.uid
WITH n, memberships, flows_in,
     collect(CASE WHEN b IS NULL THEN null
             ELSE {neuron: b.uid, bits: fo.bits, share: fo.share} END)[0..$limit] AS flows_out
RETURN n.uid AS neuron, n.layer AS layer, n.kind AS kind, n.mean AS mean, n.std AS std, n.entropy AS entropy,
       n.betweenness AS betweenness, n.relay_score AS relay_score, n.class_means AS class_means,
       memberships, flows_in, flows_out"""),
            bound="one neuron: its memberships, and the `limit` strongest of its flows in and out",
        ),
        NamedQuery(
            "flow-between",
            "strongest neuron paths between two neurons, by the product of shares",
            (
                _model(),
                Param("source", str, help="neuron uid in a lower layer"),
                Param("target", str, help="neuron uid in a higher layer"),
                _limit(5),
            ),
            (FLOWS_INTO,),
            answer=flow_between,
            bound="the flow edges into the neurons that reach the target, down to the source's layer (a neuron "
            "keeps at most top_k incoming edges; at most ANSWER_ROWS read); at most `limit` paths",
        ),
        NamedQuery(
            "key-communities",
            "communities whose closing costs most accuracy (overall, or for one class)",
            (_model(), _method(), Param("class", int, None, "a class: rank by the accuracy it loses", 0), _limit()),
            on_complete_model(f"""
MATCH (c:Community {{generation: m.generation, method: $method}})-[r:RELAYS]->(k:Class {{generation: m.generation}})
WHERE ($class IS NULL AND k.index = 0 AND c.role = 'key') OR (k.index = $class AND r.acc_drop > {ROLE_THRESHOLD})
RETURN c.uid AS community, c.layer AS layer, c.size AS size,
       CASE WHEN $class IS NULL THEN c.acc_drop ELSE r.acc_drop END AS acc_drop, c.label AS label
ORDER BY acc_drop DESC, community LIMIT $limit"""),
            bound="one method's communities x classes; at most `limit` rows",
        ),
        NamedQuery(
            "noise-communities",
            "communities whose closing improves accuracy",
            (_model(), _method(), _limit()),
            on_complete_model("""
MATCH (c:Community {generation: m.generation, method: $method}) WHERE c.role = 'noise'
RETURN c.uid AS community, c.layer AS layer, c.size AS size, c.acc_drop AS acc_drop, c.label AS label
ORDER BY acc_drop, community LIMIT $limit"""),
            bound="one method's communities; at most `limit` rows",
        ),
        NamedQuery(
            "attribution",
            "top input features for a class (NIF path flow)",
            (_model(), _class(), _limit()),
            on_complete_model("""
MATCH (n:Neuron {generation: m.generation})-[a:ATTRIBUTES]->(:Class {generation: m.generation, index: $class})
RETURN n.uid AS feature, n.name AS name, n.index AS index, a.score AS score, a.rank AS rank
ORDER BY score DESC, index LIMIT $limit"""),
            bound="the stored attributions of one class (32 features); at most `limit` rows",
        ),
        NamedQuery(
            "evolution",
            "over a checkpoint series (ingest --checkpoints): when the communities on class k's relay-path "
            "chain appeared, split or merged, checkpoint by checkpoint",
            (
                Param("model", str, help="the series id (the --name given to ingest --checkpoints)"),
                _class(),
                Param("method", str, "relay", "community method, one the series was analysed with"),
                Param("min_overlap", float, MIN_OVERLAP, "least member overlap (Jaccard) that links two", 0, 1),
            ),
            on_complete_model("""
MATCH (k:Checkpoint {generation: m.generation})-[:HAS_COMMUNITY]->(c:Community {method: $method})
WHERE $class IN c.chain_classes
OPTIONAL MATCH (p:Community)-[s:MATCHES]->(c) WHERE s.overlap >= $min_overlap
OPTIONAL MATCH (p)-[t:MATCHES]->(q:Community) WHERE t.overlap >= $min_overlap
WITH k, c, p, count(q) AS p_targets ORDER BY p.uid
WITH k, c, collect(p.uid) AS sources, max(p_targets) AS most_targets
RETURN k.step AS step, c.layer AS layer, c.uid AS community, c.label AS label, sources,
       CASE WHEN k.index = 0 THEN 'first' WHEN size(sources) = 0 THEN 'appeared'
            WHEN size(sources) > 1 THEN 'merged' WHEN most_targets > 1 THEN 'split' ELSE 'continued' END AS event
ORDER BY step, layer, community"""),
            bound="the series' communities on a chain of the class, one per checkpoint and layer, with their matches",
        ),
        NamedQuery(
            "compare",
            "one row per model: accuracy, communities per layer, the top relay chain for a "
            "class, its score, and the deletion, knockout and fidelity scores",
            (Param("models", list, help="model ids, comma-separated"), _class(), _method()),
            """
MATCH (m:Model) WHERE m.status = 'complete' AND m.model_id IN $models
OPTIONAL MATCH (c:Community {generation: m.generation, method: $method})
WITH m, c.layer AS layer, count(c) AS n ORDER BY layer
RETURN m.model_id AS model, m.accuracy AS accuracy,
       collect(CASE WHEN layer IS NULL THEN null ELSE [layer, n] END) AS communities_per_layer,
       m.deletion_auc_attribution AS deletion_attribution, m.deletion_auc_random AS deletion_random,
       m.relay_knockout_rho AS knockout_rho, m.fidelity_ratio AS fidelity""",
            per_model=False,
            bound="one row per listed model, plus one relay-path answer (limit 1) per model",
        ),
    ]
}


def texts() -> list[str]:
    """Every Cypher text the library can send."""
    found = [MODEL_SHAPE]
    for q in QUERIES.values():
        found += list(q.cypher) if isinstance(q.cypher, tuple) else [q.cypher]
    return found


def ask(store, name: str, **given) -> list[dict]:
    """Run named query `name` with `given` parameters on `store`; rows as dicts."""
    query, params, cyphers = _prepared(store, name, given)
    if name == "compare":
        return _compare(store, params)
    if query.answer is not None:
        return query.answer(store, params)
    (cypher,) = cyphers
    rows = store.read(cypher, params, model=params["model"] if query.per_model else None)
    if query.order:
        column, descending = query.order
        rows.sort(key=lambda row: (row[column] is None, row[column]), reverse=descending)
    return rows


def cypher_text(store, name: str, **given) -> str:
    """The Cypher that `ask` runs for these parameters (for relay-path and flow-between, the reads
    their answer is computed from), separated by blank lines."""
    return "\n\n".join(_prepared(store, name, given)[2])


def _prepared(store, name: str, given: dict) -> tuple[NamedQuery, dict, list[str]]:
    """The query, its checked parameters, and the texts for them."""
    query = QUERIES.get(name)
    if query is None:
        raise UserError(f"no query named {shown(name)}; the queries are: {', '.join(QUERIES)}")
    params = _checked(query, given)
    shape = _shape(store, params["model"]) if query.per_model else None
    if shape and params.get("class") is not None and params["class"] >= shape["classes"]:
        raise UserError(f"class {params['class']} is not a class of {params['model']}: use 0..{shape['classes'] - 1}")
    if name == "flow-between":
        _check_reachable(params, shape)
    return query, params, list(query.cypher) if isinstance(query.cypher, tuple) else [query.cypher]


def _checked(query: NamedQuery, given: dict) -> dict:
    known = {p.name: p for p in query.params}
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise UserError(
            f"{query.name} takes no parameter {clip(', '.join(unknown))}; it takes: "
            + (", ".join(known) or "none")
            + f" ({query.describe()})"
        )
    params = {}
    for p in query.params:
        if p.name in given and given[p.name] is not None:
            params[p.name] = p.parse(given[p.name])
        elif p.default is REQUIRED:
            raise UserError(f"{query.name} needs parameter {p.name} ({p.help}); usage: {query.describe()}")
        else:
            params[p.name] = p.default
    return params


def _shape(store, model: str) -> dict:
    """The model's number of layers and classes; a UserError when it is not stored."""
    rows = store.read(MODEL_SHAPE, {"model": model}, model=model)
    if not rows:
        raise no_such_model(model)
    return rows[0]


def _check_reachable(params: dict, shape: dict) -> None:
    """A UserError unless a path of the layer DAG leads from the source neuron's layer up to the
    target's."""
    lower, upper = (_layer_of(params[end], params["model"], end) for end in ("source", "target"))
    if upper <= lower:
        raise UserError(f"target {params['target']} must be in a higher layer than source {params['source']}")
    last = shape["layers"] - 1
    feeds = [tuple(edge) for edge in shape["feeds"] if None not in edge] or [(i, i + 1) for i in range(last)]
    reached = {lower}
    for a, b in sorted(feeds, key=lambda edge: edge[1]):  # layers are numbered in dataflow order
        if a in reached:
            reached.add(b)
    if upper not in reached:
        raise UserError(
            f"no path of the layer DAG leads from {params['source']} to {params['target']} (parallel branches)"
        )


def _layer_of(uid: str, model: str, what: str) -> int:
    match = re.fullmatch(re.escape(model) + r"/L(\d+)/\d+", uid)
    if not match:
        raise UserError(f"{what} {shown(uid)} is not a neuron uid of model {model!r} (like {model}/L1/0)")
    return int(match.group(1))


def _compare(store, params: dict) -> list[dict]:
    """The compare statement for every listed model, plus each model's top relay-path chain."""
    rows = {row["model"]: row for row in store.read(QUERIES["compare"].cypher, params)}
    missing = [m for m in params["models"] if m not in rows]
    if missing:
        raise no_such_model(*missing)
    result = []
    for model in params["models"]:
        chain = ask(store, "relay-path", model=model, **{"class": params["class"]}, method=params["method"], limit=1)
        top = chain[0] if chain else {}
        result.append(
            {
                **rows[model],
                "top_chain": top.get("chain"),
                "top_chain_score": top.get("score"),
                **{f"top_chain_{column}": top.get(column) for column in FIDELITY_COLUMNS},
            }
        )
    return result
