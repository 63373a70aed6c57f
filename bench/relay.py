"""Greedy relay-module search on a 128-neuron layer for 10 classes on 1,797 samples (a digits MLP's
hidden layer), against the same greedy rebuilding every candidate's joint-state table from scratch
(np.unique over the rows of Y_0 + candidate) instead of updating Y_0's state incrementally; the
baseline is timed on its first steps and extrapolated.

    .venv/bin/python bench/relay.py
"""

import time

import numpy as np
import torch
from torch import nn

from neurocypher.ingest.data import load_data
from neurocypher.ingest.demo import train
from neurocypher.ingest.relay import binarize, class_indicators, conditional_mi, greedy_relay

WIDTH, BASELINE_STEPS = 128, 8


def hidden_layer():
    data = load_data("sklearn:digits")
    torch.manual_seed(0)
    model = train(nn.Sequential(nn.Linear(64, WIDTH), nn.ReLU(), nn.Linear(WIDTH, 10)), data.X, data.y, epochs=30)
    with torch.no_grad():
        hidden = model[1](model[0](torch.from_numpy(data.X))).numpy()
        predictions = model(torch.from_numpy(data.X)).argmax(1).numpy()
    return hidden, data.y, predictions


def from_scratch_steps(bits, x_in, x_out, steps):
    """The first `steps` greedy steps, each candidate's states rebuilt from the raw bits."""
    remaining, moved = list(range(bits.shape[1])), []
    for _ in range(steps):
        kept = [
            conditional_mi(x_in, x_out, np.unique(bits[:, moved + [n]], axis=0, return_inverse=True)[1].ravel())[0]
            for n in remaining
        ]
        moved.append(remaining.pop(int(np.argmax(kept))))


def main() -> None:
    acts, labels, predictions = hidden_layer()
    bits = binarize(acts)
    x_in, x_out = class_indicators(labels, predictions, 10)
    started = time.perf_counter()
    for c in range(10):
        greedy_relay(bits, x_in[c], x_out[c])
    ours_s = time.perf_counter() - started

    started = time.perf_counter()
    from_scratch_steps(bits, x_in[0], x_out[0], BASELINE_STEPS)
    per_step = (time.perf_counter() - started) / BASELINE_STEPS
    # step t evaluates WIDTH - t candidates: scale the measured steps to all WIDTH steps, 10 classes
    candidates_measured = sum(WIDTH - t for t in range(BASELINE_STEPS))
    baseline_s = per_step * BASELINE_STEPS / candidates_measured * (WIDTH * (WIDTH + 1) / 2) * 10
    print(
        f"greedy relay search, {WIDTH} neurons x 10 classes x {len(acts)} samples: {ours_s:.1f} s; "
        f"from-scratch tables: {baseline_s:.0f} s extrapolated from {BASELINE_STEPS} steps"
    )
    print(f"relay: ratio={baseline_s / ours_s:.1f} greedy_s={ours_s:.1f} from_scratch_s={baseline_s:.0f}")


if __name__ == "__main__":
    main()
