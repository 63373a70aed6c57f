"""The demo: two small models trained in seconds on scikit-learn's digits, analysed and stored."""

import time
from pathlib import Path

import numpy as np
import torch
from sklearn.model_selection import train_test_split
from torch import nn

from neurocypher.progress import progress_bar
from neurocypher.queries.chains import DEFAULT_SCORE, SCORE_UNITS, fidelity_text, score_meaning
from neurocypher.queries.store import Store

from . import demo_models
from .analysis import Analysis
from .checkpoints import ingest_series, load_checkpoints
from .data import load_data
from .demo_models import cnn, mlp
from .modelfile import source_of
from .pipeline import analyze
from .series import chain_changes, settled_step
from .summary import summary
from .writer import write

SEED = 0
WEIGHTS_VERSION = 3  # bump when an architecture or the training recipe changes


RELAY_CLASS = 3  # the class whose relay path the demo prints
DEMO_MODELS = {"digits-mlp": (mlp, 60), "digits-cnn": (cnn, 40)}  # name: (factory, epochs)
SERIES = "digits-mlp-training"  # the MLP's training checkpoints, stored as a series
CHECKPOINT_EPOCHS = (1, 3, 10, 30, 60)
SERIES_METHODS = ("relay",)


def train(model: nn.Module, X: np.ndarray, y: np.ndarray, epochs: int, seed: int = SEED, after_epoch=None) -> nn.Module:
    """Adam on mini-batches of 64, in an order fixed by `seed`; `after_epoch(epoch, mean loss)` is
    called after each epoch (counted from 1)."""
    generator = torch.Generator().manual_seed(seed)
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    with progress_bar(epochs, f"training {type(model).__name__}") as advance:
        for epoch in range(1, epochs + 1):
            losses = []
            for batch in torch.randperm(len(Xt), generator=generator).split(64):
                optimiser.zero_grad()
                loss = nn.functional.cross_entropy(model(Xt[batch]), yt[batch])
                loss.backward()
                optimiser.step()
                losses.append(loss.item())
            if after_epoch is not None:
                after_epoch(epoch, float(np.mean(losses)))
            advance()
    return model.eval()


def checkpoint_path(name: str, epoch: int, cache: Path) -> Path:
    return cache / "checkpoints" / f"{name}-v{WEIGHTS_VERSION}-epoch{epoch}.pt"


def demo_model(factory) -> str:
    """The `--model FILE.py:FACTORY` of a demo model."""
    return f"{demo_models.__file__}:{factory.__name__}"


def weights_path(name: str, cache: Path) -> Path:
    return cache / f"{name}-v{WEIGHTS_VERSION}.pt"


def trained(name: str, cache: Path) -> tuple[nn.Module, float]:
    """A demo model with cached weights (trained on first use) and its held-out accuracy."""
    factory, epochs = DEMO_MODELS[name]
    data = load_data("sklearn:digits")
    X_train, X_test, y_train, y_test = train_test_split(
        data.X, data.y, test_size=0.25, random_state=SEED, stratify=data.y
    )
    torch.manual_seed(SEED)
    model = factory()
    path = weights_path(name, cache)
    saves = CHECKPOINT_EPOCHS if name == "digits-mlp" else ()
    if path.exists() and all(checkpoint_path(name, e, cache).exists() for e in saves):
        model.load_state_dict(torch.load(path, weights_only=True))
    else:
        (cache / "checkpoints").mkdir(parents=True, exist_ok=True)

        def save(epoch, loss):
            if epoch in saves:
                state = {"state_dict": model.state_dict(), "step": epoch, "metrics": {"train_loss": loss}}
                torch.save(state, checkpoint_path(name, epoch, cache))

        train(model, X_train, y_train, epochs, after_epoch=save)
        torch.save(model.state_dict(), path)
    with torch.no_grad():
        held_out = (model(torch.from_numpy(X_test)).argmax(1).numpy() == y_test).mean()
    return model.eval(), float(held_out)


def relay_answers(store: Store, model: str, c: int, methods: list[str]) -> list[str]:
    """The stored answers to "which communities relay class c from input to output" (relay-path):
    what the score means, then one line per method: the top chain, its score and its fidelity (the
    accuracy class c and the most-hurt other class lose when the chain is closed, and class c's loss
    with random chains)."""
    meaning = (
        f"{SCORE_UNITS[DEFAULT_SCORE]}: {score_meaning(DEFAULT_SCORE, c)}; negative: they matter more to another class"
    )
    lines = [f"relay-path, class {c} (score in {meaning}):"]
    for method in methods:
        chains = store.ask("relay-path", model=model, method=method, **{"class": c}, limit=1)
        if not chains:
            lines.append(f"  {method}: no chain")
            continue
        top = chains[0]
        steps = " -> ".join(f"{uid.rsplit('/', 2)[-2]}/{uid.rsplit('/', 1)[-1]}" for uid in top["chain"])
        lines.append(f"  {method}: {steps}; score {top['score']:+.3g}; {fidelity_text(top, c)}")
    return lines


def run_demo(store: Store, cache: Path, say=print) -> list[Analysis]:
    """Train (or reuse), analyse on all 1,797 digits, store with replace, and summarise each model."""
    data = load_data("sklearn:digits")
    results = []
    for name in DEMO_MODELS:
        started = time.perf_counter()
        model, held_out = trained(name, cache)
        analysis = analyze(model, data.X, data.y, name=name, **data.analyze_kwargs)
        analysis.source = source_of(demo_model(DEMO_MODELS[name][0]), weights_path(name, cache), data.source)
        write(store, analysis, replace=True)
        answers = "".join(f"\n  {line}" for line in relay_answers(store, name, RELAY_CLASS, analysis.methods))
        say(
            summary(analysis) + answers + "\n  held-out accuracy "
            f"{held_out:.3f}; analysed and stored in {time.perf_counter() - started:.1f} s"
        )
        results.append(analysis)
    say(training_series(store, cache, data))
    return results


def training_series(store: Store, cache: Path, data) -> str:
    """Store the MLP's training checkpoints as series SERIES (relay modules only, to stay quick)
    and say at which epoch its class-RELAY_CLASS relay chain settled."""
    started = time.perf_counter()
    checkpoints = load_checkpoints(str(checkpoint_path("digits-mlp", "*", cache)))
    source = source_of(demo_model(mlp), None, data.source)
    ingest_series(
        store, mlp, checkpoints, data.X, data.y, name=SERIES, replace=True, source=source,
        methods=SERIES_METHODS, **data.analyze_kwargs,
    )  # fmt: skip
    rows = store.ask("evolution", model=SERIES, method="relay", **{"class": RELAY_CLASS})
    settled, changed = settled_step(rows), ", ".join(map(str, chain_changes(rows))) or "no epoch"
    steps = ", ".join(str(c.step) for c in checkpoints)
    verdict = (
        f"settled at epoch {settled} (it changed at {changed})"
        if settled is not None
        else f"changed at epochs {changed}, so it had not settled by the last checkpoint"
    )
    return (
        f"{SERIES}: {len(checkpoints)} checkpoints of digits-mlp (epochs {steps}), relay modules each; "
        f"the class-{RELAY_CLASS} relay-path chain {verdict} "
        f"(query evolution --param model={SERIES} --param class={RELAY_CLASS}); "
        f"stored in {time.perf_counter() - started:.1f} s"
    )
