"""The explorer's statements (the Streamlit app's views of one model).

Everything that can grow with the model is paged: `$skip` and `$limit` (at most PAGE_MAX rows), so
the app never loads a whole model's edges at once; `pages(...)` walks the pages.
"""

from .schema import on_complete_model

PAGE = 500  # rows per page the app asks for
PAGE_MAX = 5000

MODEL_OVERVIEW = """
MATCH (m:Model) WHERE m.status = 'complete' AND m.kind = 'model'
OPTIONAL MATCH (l:Layer {generation: m.generation})
WITH m, sum(l.flow_edges) AS edges
OPTIONAL MATCH (c:Community {generation: m.generation})
WITH m, edges, c.method AS method, count(c) AS n ORDER BY method
RETURN m.model_id AS model, m.arch AS arch, m.n_layers AS layers, m.dataset AS dataset, m.n_samples AS samples,
       m.accuracy AS accuracy, m.n_neurons AS neurons, edges,
       collect(CASE WHEN method IS NULL THEN null ELSE [method, toString(n)] END) AS communities,
       m.deletion_auc_attribution AS deletion_attribution, m.deletion_auc_random AS deletion_random,
       m.fidelity_ratio AS fidelity, m.relay_knockout_rho AS knockout_rho, m.series AS series, m.step AS step,
       m.created_at AS created"""

MODEL_PARAMS = on_complete_model("""
RETURN m.params AS params, m.layer_widths AS widths, m.class_accuracy AS class_accuracy""")

LAYERS = on_complete_model("""
MATCH (l:Layer {generation: m.generation})
RETURN l.index AS index, l.name AS name, l.module AS module, l.kind AS kind, l.width AS width ORDER BY index""")

CLASSES = on_complete_model("""
MATCH (k:Class {generation: m.generation})
RETURN k.index AS index, k.name AS name, k.accuracy AS accuracy ORDER BY index""")

METHODS = on_complete_model("""
MATCH (c:Community {generation: m.generation})
RETURN c.method AS method, count(c) AS communities ORDER BY method""")

COMMUNITIES = on_complete_model("""
MATCH (c:Community {generation: m.generation, method: $method})
OPTIONAL MATCH (n:Neuron)-[mo:MEMBER_OF]->(c) WHERE mo.primary = 1
WITH c, count(n) AS members, sum(CASE WHEN n.constant = true THEN 1 ELSE 0 END) AS constant
RETURN c.uid AS uid, c.layer AS layer, c.index AS index, c.size AS size, c.role AS role,
       c.label AS label, c.acc_drop AS acc_drop, c.relay_bits AS relay_bits, c.class AS class,
       c.closing_specificity AS closing_specificity, members > 0 AND constant = members AS dead
ORDER BY layer, index SKIP $skip LIMIT $limit""")

COMMUNITY_FLOWS = on_complete_model("""
MATCH (a:Community {generation: m.generation, method: $method})-[f:FLOWS_TO]->(b:Community)
WHERE f.bits >= $min_bits
RETURN a.uid AS source, b.uid AS target, f.bits AS bits, f.edges AS edges, f.mean AS mean
ORDER BY bits DESC, source, target SKIP $skip LIMIT $limit""")

COMMUNITY_DETAIL = on_complete_model("""
MATCH (c:Community {generation: m.generation, uid: $uid})
OPTIONAL MATCH (n:Neuron)-[mo:MEMBER_OF]->(c) WHERE mo.primary = 1
WITH c, count(n) AS members, sum(CASE WHEN n.constant = true THEN 1 ELSE 0 END) AS constant
RETURN c.uid AS uid, c.method AS method, c.layer AS layer, c.size AS size, c.role AS role, c.label AS label,
       c.acc_drop AS acc_drop, c.relay_bits AS relay_bits, c.class_acc_drop AS class_acc_drop,
       c.closing_specificity AS closing_specificity, c.relay_specificity AS relay_specificity,
       c.class_distribution AS class_distribution, c.prototype AS prototype, c.class AS class,
       c.top_samples AS top_samples, members > 0 AND constant = members AS dead""")

NEURON = on_complete_model("""
MATCH (n:Neuron {generation: m.generation, uid: $uid})
RETURN n.uid AS uid, n.layer AS layer, n.index AS index, n.kind AS kind, n.mean AS mean, n.std AS std,
       n.entropy AS entropy, n.constant AS constant, n.betweenness AS betweenness, n.core AS core,
       n.relay_score AS relay_score, n.class_means AS class_means""")

STRONGEST_TWO_HOPS = on_complete_model("""
MATCH (a:Neuron {generation: m.generation, layer: 0})-[f:FLOWS_TO]->(b:Neuron)
WITH a, b, f ORDER BY f.bits DESC, a.uid LIMIT 1
MATCH (b)-[g:FLOWS_TO]->(c:Neuron)
RETURN a.uid AS source, c.uid AS target ORDER BY g.bits DESC, target SKIP $skip LIMIT $limit""")

MEMBERS = on_complete_model("""
MATCH (n:Neuron)-[mo:MEMBER_OF]->(c:Community {generation: m.generation, uid: $uid}) WHERE mo.primary = 1
RETURN n.uid AS neuron, n.index AS index, mo.p AS p, n.mean AS mean, n.entropy AS entropy,
       n.relay_score AS relay_score
ORDER BY index SKIP $skip LIMIT $limit""")

MEMBER_FLOWS_OUT = on_complete_model("""
MATCH (n:Neuron)-[mo:MEMBER_OF]->(c:Community {generation: m.generation, uid: $uid}) WHERE mo.primary = 1
MATCH (n)-[f:FLOWS_TO]->(t:Neuron)
RETURN n.uid AS source, t.uid AS target, f.bits AS bits
ORDER BY bits DESC, source, target SKIP $skip LIMIT $limit""")

MEMBER_FLOWS_IN = on_complete_model("""
MATCH (n:Neuron)-[mo:MEMBER_OF]->(c:Community {generation: m.generation, uid: $uid}) WHERE mo.primary = 1
MATCH (s:Neuron)-[f:FLOWS_TO]->(n)
RETURN s.uid AS source, n.uid AS target, f.bits AS bits
ORDER BY bits DESC, source, target SKIP $skip LIMIT $limit""")


def page(store, cypher: str, model: str, number: int = 0, size: int = PAGE, **params) -> list[dict]:
    """Rows `number * size` .. of a paged statement on one model."""
    size = max(1, min(size, PAGE_MAX))
    return store.read(cypher, {"model": model, **params, "skip": number * size, "limit": size}, model=model)


def pages(store, cypher: str, model: str, most: int, size: int = PAGE, **params) -> list[dict]:
    """Up to `most` rows, fetched a page at a time."""
    rows: list[dict] = []
    while len(rows) < most:
        batch = page(store, cypher, model, len(rows) // size, size, **params)
        rows += batch
        if len(batch) < size:
            break
    return rows[:most]


SERIES = """
MATCH (m:Model) WHERE m.status = 'complete' AND m.kind = 'series'
RETURN m.model_id AS series, m.methods AS methods, m.steps AS steps, m.n_classes AS classes ORDER BY series"""

CHECKPOINTS = on_complete_model("""
MATCH (k:Checkpoint {generation: m.generation})
WITH k ORDER BY k.step
RETURN k AS checkpoint""")
