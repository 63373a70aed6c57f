"""`analyze`: one model's probe samples made ready for it, and every stage of `stages.py` run on them
into an `Analysis`; `runnable`: a stored model and its data made ready to run again the same way."""

import dataclasses

import numpy as np
from torch import nn

from neurocypher.errors import UserError, first_line

from .analysis import Analysis, check_model_name
from .data import check_features, check_labels
from .neuronize import ClassScores
from .options import AnalysisOptions
from .stages import Run, run_stages
from .tokens import Tokens, pack


def analyze(
    model: nn.Module,
    X: np.ndarray,
    y: np.ndarray,
    *,
    name: str,
    dataset: str = "",
    class_names: list[str] | None = None,
    image_shape: tuple[int, int] | None = None,
    feature_names: list[str] | None = None,
    mask: np.ndarray | None = None,
    vocab: list[str] | None = None,
    options: AnalysisOptions | None = None,
    **settings,
) -> Analysis:
    """Neuronize `model` on the probe set (X, y) and run every analysis stage (`stages.STAGES`):
    information flow (NIF), communities by each chosen method, their relay information per class,
    closing, knockout and labels.

    Parameters
    ----------
    model : torch.nn.Module
    X, y : numpy arrays
        The probe samples (as the model takes them) and their integer labels.
    name : str
        The model id in the store.
    dataset, class_names, image_shape, feature_names
        Facts about the data (see `ingest.data.Dataset.analyze_kwargs`).
    mask, vocab
        Token data: the attention mask (samples x positions) and the token strings by id. Integer X
        is token ids (`ingest.tokens`) when either is given or the model has an `nn.Embedding`;
        other X is cast to float32.
    options : AnalysisOptions, optional
        The analysis settings; `**settings` override single fields (e.g. `methods=("flow",)`).
        The model runs on `options.device` during the analysis and is moved back after it.

    Returns
    -------
    Analysis
    """
    check_model_name(name)
    try:
        options = dataclasses.replace(options or AnalysisOptions(), **settings)
    except TypeError as exc:
        raise UserError(
            f"analyze() got a setting it does not know ({first_line(exc)}); the settings are the "
            "fields of ingest.options.AnalysisOptions"
        ) from None
    if not isinstance(model, nn.Module):
        raise UserError(f"model must be a torch.nn.Module, got a {type(model).__name__}")
    X, tokens = _samples(model, check_features(X), mask, vocab)
    y = check_labels(y, len(X))
    analysis = Analysis(
        name=name,
        dataset=dataset,
        class_names=list(class_names) if class_names else None,
        labels=y,
        options=options,
        image_shape=tuple(image_shape) if image_shape and tokens is None else None,
        feature_names=tokens.names if tokens is not None else feature_names,
    )
    device, home = options.torch_device(), next((p.device for p in model.parameters()), None)
    analysis.notes["ran_on"] = device.type
    try:
        return run_stages(Run(model=model.to(device), X=X, y=y, analysis=analysis, tokens=tokens))
    finally:
        if home is not None:
            model.to(home)


def runnable(model: nn.Module, X, mask=None, vocab=None, logits: str = "") -> tuple[ClassScores, np.ndarray]:
    """The model as the analysis runs it (`ingest.neuronize.ClassScores`) and the probe samples as it
    takes them (token data packed with its mask), for running a stored model's model and data again."""
    X, tokens = _samples(model, check_features(X), mask, vocab)
    return ClassScores(model, logits, tokens), X


def _samples(model: nn.Module, X: np.ndarray, mask, vocab) -> tuple[np.ndarray, Tokens | None]:
    """The probe samples as the analysis runs them, and their tokens for token data (integer X with a
    mask or a vocabulary, or for a model with an `nn.Embedding`): packed with the mask (`ingest.tokens`)."""
    embeds = any(isinstance(m, nn.Embedding) for m in model.modules())
    if X.dtype.kind != "i" or not (mask is not None or vocab is not None or embeds):
        if mask is not None or vocab is not None:
            raise UserError("an attention mask or a vocabulary comes with integer token ids; X is not integer")
        return X.astype(np.float32, copy=False), None
    if X.ndim != 2 or X.min() < 0:
        raise UserError(f"token ids must be non-negative integers, samples x positions; got shape {X.shape}")
    packed = pack(X, mask)
    return packed, Tokens.of(packed, vocab, pad=_pad_id(model))


def _pad_id(model: nn.Module) -> int:
    """The id that replaces a deleted token: the model config's `pad_token_id` (Hugging Face), else 0."""
    pad = getattr(getattr(model, "config", None), "pad_token_id", None)
    return pad if isinstance(pad, int) else 0
