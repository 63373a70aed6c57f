"""What the package's own statements need of the embedded server, against the limits it runs them
under (`queries.server.LIMITS`): on a synthetic model of 100k neurons (10 layers of 10,000), 1M flow
edges and 4 communities per layer, each explorer statement at PAGE_MAX rows, a page of each export
and every named question, with the smallest QUERY_MEM_CAPACITY (MB) it passes under (bisection) and
its time (client included). (The earlier relay-path text, one MATCH per hop, needed 1,554 MB here
with min_bits 0 over 10 layers and 6,671 MB over 11; relay-path is now a best-path search.)

    .venv/bin/python bench/limits.py
"""

import time

from redis.exceptions import ResponseError

LAYERS, WIDTH, EDGES, COMMUNITIES = 10, 10_000, 1_000_000, 4
MODEL = "bench-limits"
TOP_MB = 4096


def statements(store):
    """(name, call) for every statement the package sends about one model, at its largest."""
    from neurocypher.queries import explore, export

    m, uid, neuron = MODEL, f"{MODEL}/innersight/L1/c0", f"{MODEL}/L1/3"
    page = {"skip": 0, "limit": explore.PAGE_MAX}

    def read(cypher, **params):
        return lambda: store.read(cypher, {"model": m, **params}, model=m)

    def ask(name, **params):
        return lambda: store.ask(name, **params)

    yield "explore.MODEL_OVERVIEW", lambda: store.read(explore.MODEL_OVERVIEW)
    for name in ("MODEL_PARAMS", "LAYERS", "CLASSES", "METHODS"):
        yield f"explore.{name}", read(getattr(explore, name))
    yield "explore.COMMUNITIES", read(explore.COMMUNITIES, method="innersight", **page)
    yield "explore.COMMUNITY_FLOWS", read(explore.COMMUNITY_FLOWS, method="innersight", min_bits=0.0, **page)
    yield "explore.COMMUNITY_DETAIL", read(explore.COMMUNITY_DETAIL, uid=uid)
    yield "explore.NEURON", read(explore.NEURON, uid=neuron)
    yield "explore.STRONGEST_TWO_HOPS", read(explore.STRONGEST_TWO_HOPS, **page)
    for name in ("MEMBERS", "MEMBER_FLOWS_OUT", "MEMBER_FLOWS_IN"):
        yield f"explore.{name}", read(getattr(explore, name), uid=uid, **page)
    yield "export.NEURON_PAGE", read(export.NEURON_PAGE, after="", limit=export.PAGE)
    yield "export.NEURON_FLOWS_PAGE", read(export.NEURON_FLOWS_PAGE, after="", limit=export.PAGE)
    yield "export.COMMUNITY_FLOWS_PAGE", read(export.COMMUNITY_FLOWS_PAGE, method="innersight", after="", limit=2000)
    yield "models", ask("models")
    yield "relay-path", ask("relay-path", model=m, **{"class": 3})
    yield "relay-path min_bits=0.1", ask("relay-path", model=m, min_bits=0.1, **{"class": 3})
    for name, params in [
        ("top-relays", {"class": 3}),
        ("community", {"uid": uid}),
        ("neuron", {"uid": neuron}),
        ("attribution", {"class": 3}),
        ("flow-between", {"source": f"{m}/L0/1", "target": f"{m}/L2/2"}),
        ("key-communities", {}),
        ("noise-communities", {}),
    ]:
        yield name, ask(name, model=m, **params)


def passes(store, run, mb: int) -> bool:
    store._command("GRAPH.CONFIG", "SET", "QUERY_MEM_CAPACITY", mb * 2**20)
    try:
        run()
    except Exception as exc:  # the store's one-line error, raised from the server's
        if isinstance(exc.__cause__, ResponseError) and "mem consumption" in str(exc.__cause__):
            return False
        raise
    return True


def needed_mb(store, run) -> int | None:
    """The smallest cap in MB that `run` passes under (None: more than TOP_MB); no cap afterwards."""
    low, high = 0, TOP_MB  # fails under low (0: none tried), passes under high
    if not passes(store, run, high):
        low = high = None
    while high and high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if passes(store, run, middle) else (middle, high)
    store._command("GRAPH.CONFIG", "SET", "QUERY_MEM_CAPACITY", 0)
    return high


def seconds(run) -> float:
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def main() -> None:
    from neurocypher.ingest.synthetic import synthetic_analysis
    from neurocypher.ingest.writer import write
    from neurocypher.queries import scratch_store
    from neurocypher.queries.server import LIMITS, QUERY_MEMORY_MB, STATEMENT_SECONDS

    analysis = synthetic_analysis(MODEL, layers=LAYERS, width=WIDTH, edges=EDGES, communities=COMMUNITIES)
    with scratch_store() as store:
        write_s = seconds(lambda: write(store, analysis))
        for name, value in [("QUERY_MEM_CAPACITY", 0), ("TIMEOUT_DEFAULT", LIMITS["TIMEOUT_MAX"])]:
            store._command("GRAPH.CONFIG", "SET", name, value)  # measure them, not stop them
        needs = {}
        for name, run in statements(store):
            took = seconds(run)
            needs[name] = (needed_mb(store, run), took)
            print(f"{name:30s} {needs[name][0]!s:>5} MB {took:6.2f} s", flush=True)
    heaviest = max(mb for mb, _ in needs.values())
    slowest = max(s for _, s in needs.values())
    print(
        f"write: {LAYERS * WIDTH:,} neurons and {EDGES:,} flow edges in {write_s:.1f} s (GRAPH.BULK, unlimited); "
        f"limits: QUERY_MEM_CAPACITY {QUERY_MEMORY_MB} MB, TIMEOUT_DEFAULT {STATEMENT_SECONDS} s"
    )
    print(f"limits: ratio={QUERY_MEMORY_MB / heaviest:.1f} heaviest_mb={heaviest} slowest_s={slowest:.2f}")


if __name__ == "__main__":
    main()
