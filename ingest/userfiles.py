"""A user's files, read safely: a Python file's function (`FILE.py:FACTORY`, for a model or data)
and a dict saved with torch.save (loaded with `weights_only=True`)."""

import importlib.util
import pickle
import re
import sys
from pathlib import Path

import torch

from neurocypher.errors import UserError, clip, first_line, shown


def call_factory(spec: str, option: str):
    """What FACTORY() in FILE.py returns, for `spec` = FILE.py:FACTORY given as `option`."""
    path_text, sep, factory_name = spec.rpartition(":")
    if not sep or not path_text or not factory_name:
        raise UserError(f"{option} {shown(spec)} is not FILE.py:FACTORY, e.g. models.py:make_model")
    module = _import(Path(path_text))
    factory = getattr(module, factory_name, None)
    if not callable(factory):
        defined = sorted(n for n, v in vars(module).items() if callable(v) and not n.startswith("_"))
        raise UserError(
            f"{clip(path_text)} has no function {shown(factory_name)}; "
            f"it defines: {', '.join(defined) or 'nothing callable'}"
        )
    try:
        return factory()
    except Exception as exc:
        raise UserError(f"{factory_name}() in {path_text} failed: {first_line(exc)}") from exc


def _import(path: Path):
    if not is_file(path):
        raise UserError(f"model file {clip(path)} not found; pass --model FILE.py:FACTORY with an existing file")
    name = f"_neurocypher_model_{abs(hash(path.resolve()))}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise UserError(f"model file {path} is not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(path.resolve().parent))
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        raise UserError(f"importing {path} failed: {type(exc).__name__}: {first_line(exc)}") from exc
    finally:
        sys.path.pop(0)
    return module


def load_pt_dict(path: Path, holding: str) -> dict:
    """A dict saved with torch.save, loaded with `weights_only=True` so that no code in it runs;
    `holding` says what the file should hold."""
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:  # torch's message suggests weights_only=False: not for us
        refused = re.search(r"Unsupported global: GLOBAL \S+", str(exc))
        if refused:
            raise UserError(
                f"{path} holds Python objects that torch.load(weights_only=True) refuses to run "
                f"({clip(refused.group(0), 100)}); save {holding} of tensors only"
            ) from exc
        raise UserError(
            f"cannot read {path} with torch.load(weights_only=True): not a file saved by torch.save; save {holding}"
        ) from exc
    except Exception as exc:
        raise UserError(
            f"cannot read {path} with torch.load(weights_only=True): {first_line(exc)}; save {holding}"
        ) from exc
    if not isinstance(loaded, dict):
        raise UserError(f"{path} holds a {type(loaded).__name__}; save {holding}")
    return loaded


def is_file(path: Path) -> bool:
    """Whether `path` is a file; False also for a path the system refuses (e.g. a name too long)."""
    try:
        return path.is_file()
    except OSError:
        return False
