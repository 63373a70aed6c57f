"""Training checkpoints of one model, analysed on the same probe set and stored as one series
(`ingest.series`): each checkpoint as model `NAME-stepSTEP`, then the series graph under NAME.

A checkpoint file is a state dict saved with `torch.save(model.state_dict(), ...)`, its step the
last number in its file name (`ckpt-300.pt`: 300), or a dict `{"state_dict": ..., "step": 300,
"metrics": {"loss": 0.41}}` whose metrics (numbers) are stored with it. Files load with
`weights_only=True`.
"""

import glob
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from neurocypher.errors import UserError, clip, shown
from neurocypher.queries.store import Store, already_stored

from .analysis import Analysis, check_model_name
from .modelfile import fit_weights
from .pipeline import analyze
from .series import checkpoint_id, metric_properties, series_graph
from .userfiles import load_pt_dict
from .writer import write


@dataclass
class Checkpoint:
    path: Path
    step: int
    state: dict
    metrics: dict[str, float] = field(default_factory=dict)


def load_checkpoints(pattern: str) -> list[Checkpoint]:
    """The checkpoints matching the glob `pattern`, in step order; a UserError when none match,
    a step cannot be told, or two share one."""
    paths = sorted(Path(p) for p in glob.glob(pattern) if Path(p).is_file())
    if not paths:
        raise UserError(f"--checkpoints {shown(pattern)} matches no file; quote the pattern, e.g. 'ckpts/*.pt'")
    checkpoints = sorted((_checkpoint(path) for path in paths), key=lambda c: c.step)
    steps = [c.step for c in checkpoints]
    repeated = sorted({s for s in steps if steps.count(s) > 1})
    if repeated:
        raise UserError(f"two checkpoints have step {repeated[0]}; give each file its own step")
    return checkpoints


def ingest_series(
    store: Store,
    factory,
    checkpoints: list[Checkpoint],
    X,
    y,
    *,
    name: str,
    replace: bool = False,
    source: dict | None = None,
    **analyze_kwargs,
) -> list[Analysis]:
    """Analyse each checkpoint (a fresh `factory()` with its weights) on (X, y), store each as
    `NAME-stepSTEP` with `series`, `step` and its metrics on its Model node, then store the series
    graph under `name`. Every analysis runs before anything is written; when a write fails, what
    this call wrote is dropped again. `source` (where the model and data came from) is stored with
    each checkpoint, its weights the checkpoint's file."""
    check_model_name(name)
    ids = [check_model_name(checkpoint_id(name, c.step)) for c in checkpoints]
    if not replace:
        for model in [name, *ids]:
            if store.has_model(model):
                raise already_stored(model)
    analyses = []
    for checkpoint, model in zip(checkpoints, ids):
        module = factory()
        fit_weights(module, checkpoint.state, checkpoint.path)
        analysis = analyze(module.eval(), X, y, name=model, **analyze_kwargs)
        analysis.metrics.update(series=name, step=checkpoint.step, **metric_properties(checkpoint.metrics))
        if source is not None:
            analysis.source = {**source, "weights": str(checkpoint.path.resolve())}
        analyses.append(analysis)
    written = []
    try:
        for analysis in analyses:
            write(store, analysis, replace=replace)
            written.append(analysis.name)
        entries = [{"model": m, "step": c.step, "metrics": c.metrics} for m, c in zip(ids, checkpoints)]
        store.write_model(series_graph(store, name, entries), replace=replace)
    except BaseException:
        for model in written:
            store.drop(model)
        raise
    return analyses


def _checkpoint(path: Path) -> Checkpoint:
    loaded = load_pt_dict(path, "model.state_dict() or {'state_dict': ..., 'step': N}")
    if "state_dict" not in loaded:
        return Checkpoint(path, _step_in_name(path), loaded)
    step, metrics = loaded.get("step"), loaded.get("metrics") or {}
    if step is None:
        step = _step_in_name(path)
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise UserError(f"{clip(path)}: 'step' must be a whole number >= 0, got {shown(step)}")
    if not isinstance(metrics, dict) or not all(_is_number(v) for v in metrics.values()):
        raise UserError(f"{clip(path)}: 'metrics' must map names to finite numbers, e.g. {{'loss': 0.41}}")
    return Checkpoint(path, step, loaded["state_dict"], {str(k): float(v) for k, v in metrics.items()})


def _step_in_name(path: Path) -> int:
    numbers = re.findall(r"\d+", path.stem)
    if not numbers:
        raise UserError(
            f"cannot tell the step of {clip(path)}: put it in the file name (ckpt-300.pt) "
            "or save {'state_dict': ..., 'step': 300}"
        )
    return int(numbers[-1])


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
