"""Token-id inputs: how a text model is fed, and what its input neurons are.

A text model takes integer token ids (samples x positions), often with an attention mask (1 at a real
token, 0 at padding). neurocypher keeps both in one integer array, ids then mask stacked on axis 1
(samples x 2 x positions) so that every row operation (batches, copies) keeps them together; the
model is called with the ids and, where its `forward` takes one, `attention_mask=`.

The input neurons are the vocabulary tokens that occur in the probe set, one neuron per token: its
value in a sample is how many times the token occurs at the sample's real positions (a bag of
tokens). So flow, attributions, input communities and relay-path chains name tokens. Closing (or
deleting) a token removes every occurrence of it: its positions are masked out and take the padding
id. Integrated Gradients of a first layer with respect to the tokens is taken on the output of the
`nn.Embedding` module that reads the ids (baseline: zero embedding) and summed over a token's
positions and embedding features, as Captum's `LayerIntegratedGradients` on an embedding layer.
"""

from dataclasses import dataclass

import numpy as np
import torch

from neurocypher.errors import UserError


@dataclass
class Tokens:
    """The token input of one probe set: which vocabulary ids are input neurons, their names, the id
    a deleted token takes, and whether samples carry an attention mask."""

    ids: np.ndarray  # vocabulary id of each input neuron (sorted)
    names: list[str]
    pad: int = 0
    masked: bool = False
    embedding: object = None  # ingest.taps.Point where the ids are embedded (set when the model is traced)

    @classmethod
    def of(cls, X: np.ndarray, vocab: list[str] | None = None, pad: int = 0) -> "Tokens":
        """The tokens of packed probe samples X (`pack`)."""
        ids, valid = split(torch.from_numpy(X))
        present = np.unique(ids[valid if valid is not None else torch.ones_like(ids, dtype=torch.bool)].numpy())
        if vocab is not None and present.max(initial=-1) >= len(vocab):
            raise UserError(f"token id {int(present.max())} is outside the vocabulary of {len(vocab)} tokens")
        names = [vocab[i] if vocab is not None else f"token {i}" for i in present]
        return cls(ids=present, names=_unique(names, present), pad=pad, masked=X.ndim == 3)

    @property
    def width(self) -> int:
        return len(self.ids)

    def counts(self, X: np.ndarray, batch: int = 4096) -> np.ndarray:
        """Samples x input neurons: each token's count at the real positions of each sample."""
        out = np.zeros((len(X), self.width), dtype=np.float32)
        for start in range(0, len(X), batch):
            ids, valid = split(torch.from_numpy(X[start : start + batch]))
            out[start : start + len(ids)] = self.per_token(torch.ones(ids.shape), ids, valid).numpy()
        return out

    def per_token(self, values: torch.Tensor, ids: torch.Tensor, valid: torch.Tensor | None) -> torch.Tensor:
        """Samples x input neurons: the sum of `values` (samples x positions) over each token's real
        positions."""
        column = self._columns(ids)
        keep = column >= 0 if valid is None else (column >= 0) & valid
        out = torch.zeros(len(ids), self.width + 1, dtype=values.dtype, device=values.device)
        out.scatter_add_(1, torch.where(keep, column, self.width), values * keep)
        return out[:, :-1]

    def delete(self, x: torch.Tensor, drop: torch.Tensor) -> torch.Tensor:
        """Packed samples `x` with the tokens `drop` (samples x input neurons, or 1 x input neurons,
        True: delete) removed: their positions take the padding id and are masked out."""
        ids, valid = split(x)
        column = self._columns(ids)
        hit = (column >= 0) & torch.gather(drop.to(torch.bool).expand(len(ids), -1), 1, column.clamp(min=0))
        ids = torch.where(hit, self.pad, ids)
        if valid is None:
            return ids
        return torch.stack([ids, (valid & ~hit).to(x.dtype)], dim=1)

    def _columns(self, ids: torch.Tensor) -> torch.Tensor:
        """The input neuron of each token id (-1 for an id that is no input neuron)."""
        known = torch.as_tensor(self.ids, device=ids.device)
        column = torch.searchsorted(known, ids.contiguous()).clamp(max=max(len(known) - 1, 0))
        return torch.where(known[column] == ids, column, -1)


def pack(ids: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    """Token ids (samples x positions) and their attention mask as one int64 array: the ids alone, or
    ids then mask stacked on axis 1."""
    ids = np.asarray(ids, dtype=np.int64)
    if mask is None:
        return ids
    mask = np.asarray(mask)
    if mask.shape != ids.shape:
        raise UserError(
            f"the attention mask has shape {mask.shape} but the token ids have {ids.shape}; they must match"
        )
    return np.stack([ids, (mask != 0).astype(np.int64)], axis=1)


def split(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Packed samples as (token ids, real-position mask or None)."""
    with torch._C.DisableTorchFunction():  # not an operation of the model: neither traced nor counted
        if x.ndim == 3:
            return x[:, 0], x[:, 1] != 0
        return x, None


def _unique(names: list[str], ids: np.ndarray) -> list[str]:
    """Token names made unique (a repeated string gets its id), so that every input neuron reads apart."""
    seen: dict[str, int] = {}
    for name in names:
        seen[name] = seen.get(name, 0) + 1
    return [name if seen[name] == 1 else f"{name} ({i})" for name, i in zip(names, ids)]
