"""Where the analysis time goes as models and probe sets grow: MLPs 64-W-W-10 (ReLU, 2 epochs of Adam)
on Gaussian classes (`ingest.synthetic.gaussian_classes`), analysed with every default method, one
sweep over the width W at a fixed sample count and one over the samples N at a fixed width. Prints
each stage's seconds per size, the stage that dominates at each size, and each stage's growth
exponent (the slope of log seconds against log W, or log N, by least squares); the last line is
`scale: ...`.

    .venv/bin/python bench/scale.py [--widths 256,512,1024,2048] [--samples 1000,2000,5000,10000,20000]
                                       [--width 256] [--at-samples 1000] [--methods M,...]
"""

import argparse
import time

import numpy as np
import torch
from torch import nn

from neurocypher.ingest.demo import train
from neurocypher.ingest.pipeline import analyze
from neurocypher.ingest.synthetic import gaussian_classes

FEATURES, CLASSES, EPOCHS = 64, 10, 2


def stage_seconds(width: int, samples: int, methods: tuple[str, ...] | None) -> dict[str, float]:
    """Each stage's wall time, and the whole analysis's (`total`), for one size."""
    X, y = gaussian_classes(samples, FEATURES, CLASSES)
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(FEATURES, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU(), nn.Linear(width, CLASSES)
    )
    train(model, X, y, EPOCHS)
    started = time.perf_counter()
    analysis = analyze(model, X, y, name=f"scale-{width}-{samples}", **({"methods": methods} if methods else {}))
    return {**analysis.stage_seconds, "total": time.perf_counter() - started}


def exponents(sizes: list[int], runs: list[dict[str, float]]) -> dict[str, float]:
    """Per stage, the least-squares slope of log(seconds) against log(size) (stages under 0.05 s at
    every size are left out: their times are noise)."""
    slopes = {}
    for stage in runs[-1]:
        seconds = np.array([run.get(stage, 0.0) for run in runs])
        if seconds.max() >= 0.05:
            slopes[stage] = float(np.polyfit(np.log(sizes), np.log(np.maximum(seconds, 1e-3)), 1)[0])
    return slopes


def sweep(label: str, sizes: list[int], run) -> tuple[dict[str, float], list[str]]:
    """Run `run(size)` for each size, print its stages, and return the growth exponents and the
    dominant stage at each size."""
    runs, dominant = [], []
    for size in sizes:
        seconds = run(size)
        runs.append(seconds)
        stages = {k: v for k, v in seconds.items() if k not in ("total", "communities")}
        top = max(stages, key=stages.get)
        dominant.append(f"{size}:{top}")
        shown = ", ".join(f"{k} {v:.1f}" for k, v in seconds.items() if v >= 0.05)
        print(f"{label}={size}: {shown}; dominant: {top} ({stages[top] / seconds['total']:.0%})", flush=True)
    slopes = exponents(sizes, runs)
    print(f"growth exponent in {label}: " + ", ".join(f"{k} {v:.2f}" for k, v in sorted(slopes.items())))
    return slopes, dominant


def _sizes(text: str) -> list[int]:
    return [int(part) for part in text.split(",")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widths", default="256,512,1024,2048")
    parser.add_argument("--samples", default="1000,2000,5000,10000,20000")
    parser.add_argument("--width", type=int, default=256, help="the width of the samples sweep")
    parser.add_argument("--at-samples", type=int, default=1000, help="the samples of the width sweep")
    parser.add_argument("--methods", help="community methods (default: every default method)")
    args = parser.parse_args()
    methods = tuple(args.methods.split(",")) if args.methods else None
    in_width, by_width = sweep("W", _sizes(args.widths), lambda w: stage_seconds(w, args.at_samples, methods))
    in_samples, by_samples = sweep("N", _sizes(args.samples), lambda n: stage_seconds(args.width, n, methods))
    print(
        f"scale: total_exponent_width={in_width['total']:.2f} total_exponent_samples={in_samples['total']:.2f} "
        f"dominant_width={','.join(by_width)} dominant_samples={','.join(by_samples)}"
    )


if __name__ == "__main__":
    main()
