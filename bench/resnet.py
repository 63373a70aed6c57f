"""A real CNN end to end: torchvision's ResNet-18 (BasicBlock, layers 2-2-2-2, 7x7 stem and max pool,
written here: no torchvision) on 32x32x3 images of 10 synthetic classes (oriented colour gratings
under noise), trained briefly, then run through the real `neurocypher ingest` CLI with every default
method in a child process on a scratch NEUROCYPHER_HOME. Prints the wall time, the child's peak RSS,
every stage's seconds and the stage that dominates; the targets are 20 minutes and 8 GiB.

    .venv/bin/python bench/resnet.py [--samples 2000] [--epochs 2] [--methods M,...]
"""

import argparse
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

CLASSES, SIZE, LIMIT_GIB, LIMIT_S = 10, 32, 8.0, 20 * 60
MODEL_FILE = '''import torch.nn as nn


class BasicBlock(nn.Module):
    """torchvision's BasicBlock: two 3x3 conv-BN, the shortcut (a 1x1 conv-BN when the shape changes)."""

    def __init__(self, cin, cout, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class ResNet18(nn.Module):
    def __init__(self, classes={classes}):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        widths, layers, cin = (64, 128, 256, 512), [], 64
        for index, cout in enumerate(widths):
            stride = 1 if index == 0 else 2
            layers.append(nn.Sequential(BasicBlock(cin, cout, stride), BasicBlock(cout, cout)))
            cin = cout
        self.layer1, self.layer2, self.layer3, self.layer4 = layers
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(512, classes)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(self.avgpool(x).flatten(1))


def make_model():
    return ResNet18()
'''


def gratings(samples: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Images of 10 classes: class c is a grating at angle c * 18 degrees, its frequency and colour
    mix set by c, with a random phase and Gaussian noise (sd 0.8 against amplitude 1)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, CLASSES, samples)
    row, col = np.mgrid[0:SIZE, 0:SIZE] / SIZE
    angle = y * np.pi / CLASSES
    frequency = 3 + (y % 3) * 2
    phase = rng.uniform(0, 2 * np.pi, samples)
    wave = np.sin(
        2 * np.pi * frequency[:, None, None] * (np.cos(angle)[:, None, None] * col + np.sin(angle)[:, None, None] * row)
        + phase[:, None, None]
    )
    colour = np.stack([np.cos(y * 0.6), np.sin(y * 0.6), np.cos(y * 1.3)], axis=1) * 0.5 + 0.5  # samples x 3
    images = colour[:, :, None, None] * wave[:, None] + rng.normal(0, 0.8, (samples, 3, SIZE, SIZE))
    return images.astype(np.float32), y


def write_inputs(folder: Path, samples: int, epochs: int) -> tuple[list[str], float]:
    """The model file, weights trained on `samples` other images, and the probe data in `folder`;
    the matching `ingest` arguments and the test accuracy."""
    import torch

    from neurocypher.ingest.demo import train

    source = MODEL_FILE.replace("{classes}", str(CLASSES))
    (folder / "model.py").write_text(source)
    namespace: dict = {}
    exec(source, namespace)
    torch.manual_seed(0)
    model = namespace["make_model"]()
    X_train, y_train = gratings(samples, seed=1)
    train(model, X_train, y_train, epochs)
    X, y = gratings(samples, seed=2)
    model.eval()
    with torch.no_grad():
        accuracy = float((model(torch.from_numpy(X)).argmax(1).numpy() == y).mean())
    torch.save(model.state_dict(), folder / "weights.pt")
    np.savez(folder / "data.npz", X=X, y=y)
    arguments = ["--model", f"{folder / 'model.py'}:make_model", "--weights", str(folder / "weights.pt")]
    return arguments + ["--data", str(folder / "data.npz"), "--name", "resnet18"], accuracy


def stage_times(output: str) -> dict[str, float]:
    """The stage times the ingest prints (`stage times: record 1.0 s, ...`)."""
    line = next((line for line in output.splitlines() if "stage times:" in line), "")
    return {name: float(s) for name, s in re.findall(r"\s*([^,]+?) ([\d.]+) s(?:,|$)", line.split("stage times:")[-1])}


def main() -> None:
    from neurocypher.queries import EmbeddedServer

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--methods", help="community methods for `ingest --methods` (default: every default method)")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="nc-resnet-", dir="/tmp"))
    try:
        started = time.perf_counter()
        ingest, accuracy = write_inputs(home, args.samples, args.epochs)
        trained = time.perf_counter() - started
        ingest += ["--methods", args.methods] if args.methods is not None else []
        neurocypher = Path(sys.executable).with_name("neurocypher")
        started = time.perf_counter()
        child = subprocess.run(
            [neurocypher, "ingest", *ingest],
            env={**os.environ, "NEUROCYPHER_HOME": str(home)},
            stdout=subprocess.PIPE,
            text=True,
        )
        seconds = time.perf_counter() - started
        print(child.stdout)
        if child.returncode != 0:
            sys.exit(f"neurocypher ingest failed with exit status {child.returncode}")
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20  # the ingest: the largest child
    finally:
        EmbeddedServer(home).stop()
        shutil.rmtree(home, ignore_errors=True)
    stages = stage_times(child.stdout)
    top = max((s for s in stages if s != "communities"), key=stages.get, default="none")
    print(
        f"ResNet-18 on {args.samples} 32x32x3 images (test accuracy {accuracy:.3f} after {args.epochs} epochs, "
        f"{trained:.0f} s): ingest {seconds:.0f} s (limit {LIMIT_S}), peak RSS {peak:.2f} GiB (limit {LIMIT_GIB:.0f}); "
        f"dominant stage {top} {stages.get(top, 0):.0f} s"
    )
    print(
        f"resnet: seconds={seconds:.0f} peak_gib={peak:.2f} ok={int(seconds <= LIMIT_S and peak <= LIMIT_GIB)} "
        f"samples={args.samples} accuracy={accuracy:.3f} dominant={top.replace(' ', '_')} "
        + " ".join(f"{k.replace(' ', '_')}={v:.1f}" for k, v in stages.items())
    )


if __name__ == "__main__":
    main()
