"""The CUDA paths give the CPU's answers: all-pairs MI (to 1e-9 bits), recording, Integrated
Gradients and closing, then a whole analysis of the digits CNN with `device="cuda"` against
`device="cpu"` (the same communities, relay bits and accuracy drops). About a minute on a GPU
machine; without a GPU it says so and compares the CPU with itself.

    .venv/bin/python bench/gpu_check.py
"""

import time

import numpy as np
import torch

from neurocypher.ingest.attribution import integrated_gradients
from neurocypher.ingest.closing import closable_layers, masked_predictions
from neurocypher.ingest.data import load_data
from neurocypher.ingest.demo import train
from neurocypher.ingest.demo_models import cnn
from neurocypher.ingest.information import discretize, mutual_information
from neurocypher.ingest.neuronize import ClassScores, record
from neurocypher.ingest.pipeline import analyze
from neurocypher.ingest.segments import PROBE_ROWS, Plans
from neurocypher.ingest.taps import rows


def largest_differences(device: torch.device) -> dict[str, float]:
    """The largest difference between the CPU's and `device`'s results of each part."""
    data = load_data("sklearn:digits")
    torch.manual_seed(0)
    model = train(cnn(), data.X, data.y, 3).eval()
    rng = np.random.default_rng(0)
    codes_u, codes_v = (discretize(rng.normal(size=(10_000, 600)).astype(np.float32)) for _ in range(2))
    cpu_mi = mutual_information(codes_u, codes_v)
    found = {"mi_bits": float(np.abs(mutual_information(codes_u, codes_v, device=device) - cpu_mi).max())}

    recordings = [record(ClassScores(model.to(d)), data.X) for d in ("cpu", device)]
    found["recording"] = max(float(np.abs(a - b).max()) for a, b in zip(recordings[0].hidden, recordings[1].hidden))

    start = torch.from_numpy(data.X[:64])
    targets = torch.from_numpy(data.y[:64])
    ig = []
    for d in ("cpu", device):
        model.to(d)
        ig.append(integrated_gradients(lambda scaled, _rows: model(scaled), start.to(d), targets.to(d), 16, 512).cpu())
    found["ig"] = float((ig[0] - ig[1]).abs().max())

    layer = closable_layers(recordings[0])[2]
    masks = rng.random((40, layer.width)) < 0.25
    closed = []
    for d in ("cpu", device):
        wrapped = ClassScores(model.to(d))
        closed.append(masked_predictions(Plans(wrapped, rows(data.X, 0, PROBE_ROWS, d)), data.X, layer, masks))
    found["closing_disagreements"] = float((closed[0] != closed[1]).mean())

    analyses = [analyze(model, data.X, data.y, name=f"check-{d}", device=d) for d in ("cpu", device.type)]
    pairs = list(zip(*(a.communities for a in analyses)))
    found["communities_differ"] = float(
        sum(a.method != b.method or not np.array_equal(a.members, b.members) for a, b in pairs)
        + abs(len(analyses[0].communities) - len(analyses[1].communities))
    )
    for name, prop in (("relay_bits", "relay_bits"), ("acc_drop", "class_acc_drop")):
        found[name] = max(float(np.abs(a.props[prop] - b.props[prop]).max()) for a, b in pairs)
    return found


TOLERANCE = {"mi_bits": 1e-9, "recording": 1e-4, "ig": 1e-3, "closing_disagreements": 0.001}
TOLERANCE |= {"communities_differ": 0, "relay_bits": 1e-9, "acc_drop": 0.002}


def main() -> None:
    cuda = torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    print(f"comparing the CPU with {torch.cuda.get_device_name() if cuda else 'the CPU (torch sees no CUDA GPU)'}")
    started = time.perf_counter()
    found = largest_differences(device)
    failed = [name for name, value in found.items() if value > TOLERANCE[name]]
    for name, value in found.items():
        print(f"  {name}: {value:.3g} (tolerance {TOLERANCE[name]:g})")
    print(
        f"gpu_check: device={device.type} ok={int(not failed)} failed={','.join(failed) or 'none'} "
        f"seconds={time.perf_counter() - started:.0f} " + " ".join(f"{k}={v:.3g}" for k, v in found.items())
    )


if __name__ == "__main__":
    main()
