"""Peak memory of ingesting the 2048-wide synthetic model: an MLP 64 -> 2048 -> 2048 -> 10 (ReLU),
trained for 2 epochs on 10,000 samples of 10 Gaussian classes, run through the real
`neurocypher ingest` CLI (all default methods) in a child process on a scratch NEUROCYPHER_HOME.
Reports the child's peak RSS and the embedded server's (VmHWM); the requirement is < 8 GiB.

    .venv/bin/python bench/memory.py [--samples N] [--width W] [--methods M,...]
"""

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

FEATURES, CLASSES, EPOCHS, LIMIT_GIB = 64, 10, 2, 8.0
MODEL_FILE = """import torch.nn as nn

def make_model():
    return nn.Sequential(nn.Linear({features}, {width}), nn.ReLU(), nn.Linear({width}, {width}), nn.ReLU(),
                         nn.Linear({width}, {classes}))
"""


def train(model, X: np.ndarray, y: np.ndarray, epochs: int = EPOCHS, seed: int = 0) -> None:
    """A few epochs of Adam (batch 256) from a fixed-seed initialisation."""
    import torch

    torch.manual_seed(seed)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    X, y = torch.from_numpy(X), torch.from_numpy(y)
    for _ in range(epochs):
        for batch in torch.randperm(len(X)).split(256):
            optimiser.zero_grad()
            torch.nn.functional.cross_entropy(model(X[batch]), y[batch]).backward()
            optimiser.step()


def write_inputs(folder: Path, samples: int, width: int) -> list[str]:
    """The model file, trained weights and data in `folder`; the matching `ingest` arguments."""
    import torch

    source = MODEL_FILE.format(features=FEATURES, width=width, classes=CLASSES)
    (folder / "model.py").write_text(source)
    namespace: dict = {}
    exec(source, namespace)
    torch.manual_seed(0)
    model = namespace["make_model"]()
    from neurocypher.ingest.synthetic import gaussian_classes

    X, y = gaussian_classes(samples, FEATURES, CLASSES)
    train(model, X, y)
    torch.save(model.state_dict(), folder / "weights.pt")
    np.savez(folder / "data.npz", X=X, y=y)
    return [
        "--model",
        f"{folder / 'model.py'}:make_model",
        "--weights",
        str(folder / "weights.pt"),
        "--data",
        str(folder / "data.npz"),
        "--name",
        f"mlp-{width}",
    ]


def server_peak_gib(home: Path) -> float:
    """VmHWM of the embedded server of `home` (read while it runs)."""
    from neurocypher.queries import EmbeddedServer

    status = Path(f"/proc/{EmbeddedServer(home).pid()}/status").read_text()
    kib = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:"))
    return kib / 2**20


def main() -> None:
    from neurocypher.queries import EmbeddedServer

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=10_000)
    parser.add_argument("--width", type=int, default=2048)
    parser.add_argument(
        "--methods", help="community methods for `ingest --methods` (default: its default, every registered method)"
    )
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="nc-memory-", dir="/tmp"))
    try:
        ingest = write_inputs(home, args.samples, args.width)
        ingest += ["--methods", args.methods] if args.methods is not None else []
        neurocypher = Path(sys.executable).with_name("neurocypher")
        started = time.perf_counter()
        child = subprocess.run([neurocypher, "ingest", *ingest], env={**os.environ, "NEUROCYPHER_HOME": str(home)})
        seconds = time.perf_counter() - started
        if child.returncode != 0:
            sys.exit(f"neurocypher ingest failed with exit status {child.returncode}")
        # the largest child this process waited for: the ingest (ru_maxrss is in KiB on Linux)
        peak, server = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20, server_peak_gib(home)
    finally:
        EmbeddedServer(home).stop()
        shutil.rmtree(home, ignore_errors=True)
    print(
        f"ingest of a {FEATURES}-{args.width}-{args.width}-{CLASSES} MLP on {args.samples} samples: "
        f"peak RSS {peak:.2f} GiB (limit {LIMIT_GIB:.0f}), embedded server {server:.2f} GiB, {seconds:.0f} s"
    )
    print(
        f"memory: peak_gib={peak:.2f} server_gib={server:.2f} seconds={seconds:.0f} "
        f"ok={int(peak < LIMIT_GIB)} samples={args.samples} width={args.width} methods={args.methods or 'default'}"
    )


if __name__ == "__main__":
    main()
