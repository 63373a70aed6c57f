"""Concurrent readers while a model is replaced: `--readers` threads (32) share one store and ask a
mix of the named queries of two stored synthetic models for `--seconds` (60), while a child process
rewrites one of them again and again through the real writer (`write(..., replace=True)`: staging
graph + RENAME). Every answer must equal the one given by the quiet store, so a missing or
half-written model counts as an error, as does any exception. The baseline is one reader alone on
the quiet store, in the same run.

    .venv/bin/python bench/load.py [--seconds 60] [--readers 32]
"""

import argparse
import multiprocessing
import random
import sys
import threading
import time
from collections import defaultdict

import numpy as np

LAYERS, WIDTH, EDGES, COMMUNITIES, CLASSES, VARIANTS = 6, 256, 60_000, 4, 10, 8
STABLE, REPLACED = "load-stable", "load-replaced"


def analysis(name: str, seed: int):
    """A synthetic model whose every named query has a non-empty answer (noise communities and an
    attribution added to `ingest.synthetic`'s)."""
    from neurocypher.ingest.synthetic import synthetic_analysis

    a = synthetic_analysis(
        name, layers=LAYERS, width=WIDTH, edges=EDGES, communities=COMMUNITIES, classes=CLASSES, seed=seed
    )
    for c in a.communities:
        drop = float(np.mean(c.props["class_acc_drop"]))
        c.props.update(role="key" if c.index % 2 else "noise", acc_drop=drop if c.index % 2 else -drop)
    a.attribution = np.random.default_rng(seed).random((CLASSES, WIDTH))
    return a


def requests(a, rng) -> list[tuple[str, dict]]:
    """VARIANTS parameter sets of every per-model query of `a`, with valid ids drawn from it."""
    m = a.name
    found = [("models", {})]
    for _ in range(VARIANTS):
        c = int(rng.integers(CLASSES))
        layer = int(rng.integers(LAYERS - 1))
        flow = a.flows[layer]
        edge = int(rng.integers(len(flow.source)))
        found += [
            ("relay-path", {"model": m, "class": c % COMMUNITIES, "min_bits": 0.1}),  # classes with an output
            ("top-relays", {"model": m, "class": c}),
            ("community", {"model": m, "uid": a.community_uid(a.communities[rng.integers(len(a.communities))])}),
            ("neuron", {"model": m, "uid": a.uid(int(rng.integers(LAYERS)), int(rng.integers(WIDTH)))}),
            (
                "flow-between",
                {
                    "model": m,
                    "source": a.uid(layer, int(flow.source[edge])),
                    "target": a.uid(layer + 1, int(flow.target[edge])),
                },
            ),
            ("key-communities", {"model": m}),
            ("noise-communities", {"model": m}),
            ("attribution", {"model": m, "class": c}),
            ("compare", {"models": [STABLE, REPLACED], "class": c}),
        ]
    return found


def rewrite(store, a, stop, writes) -> None:
    """The writer process: replace model `a` until `stop` is set."""
    from neurocypher.ingest.writer import write

    while not stop.is_set():
        write(store, a, replace=True)
        with writes.get_lock():
            writes.value += 1


class Readers:
    """Reader threads asking random requests (a query name, then one of its parameter sets) and
    checking every answer against `expected`."""

    def __init__(self, store, expected: dict):
        self.store, self.expected = store, expected
        self.plan = defaultdict(list)  # query name -> its requests
        for key, ((name, _), _) in sorted(expected.items()):
            self.plan[name].append(key)
        self.latency = {name: [] for (name, _), _ in expected.values()}
        self.errors: list[str] = []

    def ask(self, key: str) -> None:
        name, params = self.expected[key][0]
        started = time.perf_counter()
        try:
            rows = self.store.ask(name, **params)
        except Exception as exc:
            self.errors.append(f"{key}: {type(exc).__name__}: {exc}")
            return
        self.latency[name].append((time.perf_counter() - started) * 1000)
        if rows != self.expected[key][1]:
            self.errors.append(f"{key}: answer differs from the quiet store's ({len(rows)} rows)")

    def run(self, readers: int, seconds: float) -> None:
        deadline = time.monotonic() + seconds

        def loop(seed):
            rng = random.Random(seed)
            names = sorted(self.plan)
            while time.monotonic() < deadline:
                self.ask(rng.choice(self.plan[rng.choice(names)]))

        threads = [threading.Thread(target=loop, args=(seed,)) for seed in range(readers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    def all_ms(self) -> list[float]:
        return [ms for times in self.latency.values() for ms in times]


def percentile(values, q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def main() -> None:
    from neurocypher.ingest.writer import write
    from neurocypher.queries import scratch_store

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--readers", type=int, default=32)
    args = parser.parse_args()
    baseline_s = min(10.0, max(1.0, args.seconds / 5))
    rng = np.random.default_rng(0)
    stable, replaced = analysis(STABLE, 1), analysis(REPLACED, 2)
    with scratch_store() as store:
        write(store, stable)
        write(store, replaced)
        plan = requests(stable, rng) + requests(replaced, rng)
        expected = {
            f"{name}{sorted(params.items())}": ((name, params), store.ask(name, **params)) for name, params in plan
        }
        assert all(rows for _, rows in expected.values()), "every request has an answer on the quiet store"
        quiet = Readers(store, expected)
        quiet.run(1, baseline_s)
        # fork before any reader thread exists; the child's store opens its own connections
        context = multiprocessing.get_context("fork")
        stop, writes = context.Event(), context.Value("i", 0)
        writer = context.Process(target=rewrite, args=(store, replaced, stop, writes))
        writer.start()
        loaded = Readers(store, expected)
        started = time.monotonic()
        loaded.run(args.readers, args.seconds)
        elapsed = time.monotonic() - started
        stop.set()
        writer.join()
    report(quiet, loaded, args, baseline_s, elapsed, writes.value, writer.exitcode)


def report(
    quiet: Readers, loaded: Readers, args, baseline_s: float, elapsed: float, writes: int, writer_exit: int
) -> None:
    for error in (quiet.errors + loaded.errors)[:10]:
        print(f"error: {error}", file=sys.stderr)
    for name, times in sorted((name, times) for name, times in loaded.latency.items() if times):
        base = quiet.latency.get(name, [])
        print(
            f"{name:18} n={len(times):6d} p50={percentile(times, 50):7.1f} ms p95={percentile(times, 95):7.1f} ms"
            f"  (alone: p50={percentile(base, 50):6.1f} ms)"
        )
    alone, ms = quiet.all_ms(), loaded.all_ms()
    errors = len(quiet.errors) + len(loaded.errors) + (writer_exit != 0)
    print(
        f"{args.readers} readers for {elapsed:.0f} s while {REPLACED} was replaced {writes} times; "
        f"1 reader alone on the quiet store: {len(alone) / baseline_s:.0f} queries/s, "
        f"p50 {percentile(alone, 50):.1f} ms"
    )
    print(
        f"load: errors={errors} p95_ms={percentile(ms, 95):.1f} p50_ms={percentile(ms, 50):.1f} "
        f"baseline_p50_ms={percentile(alone, 50):.1f} ratio={percentile(ms, 50) / percentile(alone, 50):.1f} "
        f"queries={len(ms)} qps={len(ms) / elapsed:.0f} writes={writes} readers={args.readers}"
    )


if __name__ == "__main__":
    main()
