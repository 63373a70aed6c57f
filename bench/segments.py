"""Closings and Integrated Gradients on the part of the network they need (`ingest.segments`) against
the whole network, in the same process: torchvision's ResNet-18 of `bench/resnet.py` (untrained, in
eval mode) on 512 of its 32x32x3 images, in the two conv layers of each stage's first block (the
first is read by a conv, the second by the merge). Closings: 32 random masks of a quarter of the
layer's channels. IG: NeurFlow's IG of two of its channels w.r.t. the layer below (50 concept
inputs each, 16 steps). Both ways must give the same predictions and IG
(to 1e-4); the last line is `segments: ...`.

    .venv/bin/python bench/segments.py
"""

import runpy
import time
from pathlib import Path

import numpy as np
import torch

from neurocypher.ingest import analyze, attribution
from neurocypher.ingest.closing import masked_predictions
from neurocypher.ingest.neuronize import ClassScores
from neurocypher.ingest.segments import PROBE_ROWS, Plans

RESNET = runpy.run_path(str(Path(__file__).with_name("resnet.py")))
SAMPLES, MASKS, ROWS, STEPS = 512, 32, 50, 16


def timed(work, plans: Plans, *args):
    """`work(plans, *args)` and its seconds."""
    started = time.perf_counter()
    return work(plans, *args), time.perf_counter() - started


def gradients(plans: Plans, a, layer, X: np.ndarray) -> torch.Tensor:
    """NeurFlow's IG of two channels of `layer` (ROWS concept inputs each) w.r.t. the layer below."""
    lowers = [a.layers[i] for i in layer.inputs]
    x = torch.from_numpy(X[: 2 * ROWS])
    targets = torch.arange(len(x)) // ROWS
    between = attribution.Between(plans, lowers, layer, x, torch.arange(len(x)), targets)
    return between.integrated_gradients(STEPS, STEPS * ROWS)


def main() -> None:
    namespace: dict = {}
    exec(RESNET["MODEL_FILE"].replace("{classes}", "10"), namespace)
    torch.manual_seed(0)
    model = namespace["make_model"]().eval()
    X, y = RESNET["gratings"](SAMPLES)
    a = analyze(model, X, y, name="segments", methods=(), deletion=False)
    wrapped, probe = ClassScores(model), torch.from_numpy(X[:PROBE_ROWS])
    both = [Plans(wrapped, probe), Plans(wrapped, probe, shortcuts=False)]  # with segments, on the whole model only
    stages = [layer for layer in a.layers if layer.kind == "conv" and layer.module.endswith(("0.conv1", "0.conv2"))]
    rng = np.random.default_rng(0)
    seconds = {"closing": [0.0, 0.0], "ig": [0.0, 0.0]}
    for layer in stages:
        masks = rng.random((MASKS, layer.width)) < 0.25
        closings = [timed(masked_predictions, plans, X, layer, masks) for plans in both]
        assert np.array_equal(closings[0][0], closings[1][0]), layer.name
        igs = [timed(gradients, plans, a, layer, X) for plans in both]
        torch.testing.assert_close(igs[0][0], igs[1][0], rtol=1e-4, atol=1e-6)
        for name, pair in (("closing", closings), ("ig", igs)):
            seconds[name] = [total + s for total, (_, s) in zip(seconds[name], pair)]
        print(
            f"{layer.module} ({layer.width} channels): closing {closings[0][1]:.2f} s (whole model "
            f"{closings[1][1]:.2f} s), IG {igs[0][1]:.2f} s (whole model {igs[1][1]:.2f} s)"
        )
    (closing, closing_whole), (ig, ig_whole) = seconds["closing"], seconds["ig"]
    print(
        f"ResNet-18 on {SAMPLES} images, {len(stages)} layers: closing {closing:.1f} s against {closing_whole:.1f} s "
        f"on the whole model, IG {ig:.1f} s against {ig_whole:.1f} s"
    )
    print(
        f"segments: closing_ratio={closing_whole / closing:.1f} ig_ratio={ig_whole / ig:.1f} "
        f"closing_s={closing:.1f} ig_s={ig:.1f}"
    )


if __name__ == "__main__":
    main()
