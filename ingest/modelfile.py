"""Load a user's model: `FILE.py:FACTORY` plus optional weights saved as a state dict."""

from pathlib import Path

from torch import nn

from neurocypher.errors import UserError, clip, first_line

from .data import BUILTIN_SPECS
from .userfiles import call_factory, is_file, load_pt_dict


def load_model(spec: str, weights: str | Path | None = None) -> nn.Module:
    """Call FACTORY() from FILE.py and load `weights` (with `weights_only=True`) into the result."""
    model = call_factory(spec, "--model")
    path_text, _, factory_name = spec.rpartition(":")
    if not isinstance(model, nn.Module):
        raise UserError(f"{factory_name}() in {path_text} returned a {type(model).__name__}, not a torch.nn.Module")
    if weights is not None:
        _load_weights(model, Path(weights))
    return model.eval()


def _load_weights(model: nn.Module, path: Path) -> None:
    if not is_file(path):
        raise UserError(f"weights file {clip(path)} not found; pass the state dict saved with torch.save")
    loaded = load_pt_dict(path, "model.state_dict()")
    fit_weights(model, loaded.get("state_dict", loaded), path)  # a state dict, or a checkpoint that holds one


def fit_weights(model: nn.Module, state: dict, path: Path) -> None:
    """Load the state dict `state` (read from `path`) into `model`; a UserError when it does not fit."""
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        problems = " ".join(line.strip() for line in str(exc).splitlines()[1:3]) or first_line(exc)
        raise UserError(f"weights {path} do not fit the model: {problems[:300]}") from exc


def source_of(model: str, weights: Path | None, data: str) -> dict:
    """Where a model and its data came from (absolute paths), so that `debug` can reload them."""
    path, _, factory = model.rpartition(":")
    return {
        "model": f"{Path(path).resolve()}:{factory}",
        "weights": str(weights.resolve()) if weights else None,
        "data": data if data in BUILTIN_SPECS else _absolute(data),
    }


def _absolute(data: str) -> str:
    """A data spec with its file made absolute (FILE.py:FACTORY keeps its factory)."""
    path, sep, factory = data.rpartition(":") if ".py:" in data else (data, "", "")
    return str(Path(path).resolve()) + sep + factory
