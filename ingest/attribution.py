"""Integrated Gradients of one layer's neurons with respect to the layers feeding it, batched over
many rows and quadrature points, on the smallest part of the model that computes them.

`integrated_gradients` is the attribution itself (Gauss-Legendre quadrature from baseline 0, as
Captum's default). `Between` is its forward from the lower layers to the upper one: through the
whole model with the lower layers' values replaced where they are read (`ingest.taps`), or as the
model's plan between them says (`ingest.segments.Plans`): on the segment between them, or on one
unit's own channel, or, for a unit of a Linear or Conv layer, in closed form (one forward and one
backward pass instead of one per point).

References
----------
.. [1] Sundararajan, Taly, Yan, "Axiomatic Attribution for Deep Networks", ICML 2017,
   arXiv:1703.01365.
"""

from functools import lru_cache

import numpy as np
import torch

from neurocypher.errors import UserError

from .neuronize import token_input, valid_positions
from .segments import WHOLE_MODEL, Plans
from .taps import Point, tapped_forward


class Between:
    """The `forward` of `integrated_gradients` from the layers `lowers` to `upper`'s neurons, for the
    rows x = `distinct[copies]` explaining `targets`, and `starts`, the lower layers' values on x
    (batch first; the forward scales them side by side), computed once per distinct row.

    The forward runs as the model's plan between the layers says (`plans`, `ingest.segments.Plan`,
    checked against the whole model when it was built): on its segment, or through the whole model.
    Where a pass's rows all explain one unit and the plan has the one-channel form (a Linear or Conv
    layer read after channel-wise operations only), just that unit is computed: the other outputs,
    which IG does not read, stay 0. `integrated_gradients` takes the closed form of such a unit where
    its module reads the lower layer itself, and a merge unit's own channels alone."""

    def __init__(
        self, plans: Plans, lowers, upper, distinct: torch.Tensor, copies: torch.Tensor, targets: torch.Tensor
    ):
        self.model, self.lowers, self.upper, self.targets = plans.model, lowers, upper, targets
        self.x = distinct[copies]
        self.plan = WHOLE_MODEL
        if all(lower.kind == "input" or lower.layout.batch_axis == 0 for lower in lowers):
            points = [None if lower.kind == "input" else lower.point for lower in lowers]
            self.plan = plans.plan(points, upper.point)
        with torch.no_grad():
            starts = self._segment_starts(distinct, copies) if self.plan.segment is not None else None
            if starts is None:
                self.plan = WHOLE_MODEL
                starts = [start[copies] for start in self._eager_starts(distinct)]
        self.starts = starts
        self._take_shapes(self.starts)
        self.forward = self.whole if self.plan.segment is None else self.segmented

    def _segment_starts(self, distinct: torch.Tensor, copies: torch.Tensor) -> list | None:
        """The lower layers' values on x from the plan's segment; None where it fails."""
        piece = self.plan.segment
        try:
            kept = piece.prefix(distinct)
            return [kept[node][copies] for node in piece.starts]
        except Exception:  # noqa: BLE001 (a shortcut that fails is not taken: the whole model runs)
            return None

    def _without_shortcuts(self) -> None:
        """From now on, run the whole model: a shortcut failed on the way."""
        self.plan = WHOLE_MODEL
        self.starts = self._eager_starts(self.x)
        self._take_shapes(self.starts)
        self.forward = self.whole

    def whole(self, scaled: torch.Tensor, rows: slice) -> torch.Tensor:
        """`upper`'s neurons from the scaled lower layers, through the whole model."""
        inputs = self.x[rows].repeat(len(scaled) // (rows.stop - rows.start), *([1] * (self.x.ndim - 1)))
        replace = {}
        for lower, part in zip(self.lowers, self._parts(scaled)):
            at = self._read_at(lower)
            if at is None:
                inputs = part
            else:
                replace[at] = part.movedim(0, lower.layout.batch_axis)
        out = tapped_forward(self.model, inputs, replace=replace, capture=self.upper.point)
        return self.upper.layout.neurons(out, valid_positions(self.model, inputs))

    def _read_at(self, lower) -> Point | None:
        """Where a lower layer's values are read and replaced: None for the model's input itself;
        token inputs at the output of the `nn.Embedding` that reads them (`ingest.tokens`)."""
        if lower.kind != "input":
            return lower.point
        tokens = token_input(self.model)
        if tokens is not None and tokens.embedding is None:
            raise UserError(
                "Integrated Gradients on token inputs needs an nn.Embedding module that reads the token ids; "
                "this model embeds them otherwise: leave out the neurflow method (--methods)"
            )
        return None if tokens is None else tokens.embedding

    def segmented(self, scaled: torch.Tensor, rows: slice) -> torch.Tensor:
        """`upper`'s neurons from the scaled lower layers, on the segment (one unit alone where the
        rows explain one)."""
        unit = self.targets[rows.start : rows.stop].unique()
        if self.plan.one_channel is None or len(unit) != 1:
            return self.upper.layout.neurons(self._on(self.plan.segment, scaled, rows))
        alone = self._alone(scaled, rows, unit)
        return torch.zeros(len(scaled), self.upper.width, dtype=alone.dtype, device=alone.device).index_copy(
            1, unit, alone
        )

    def _alone(self, scaled: torch.Tensor, rows: slice, unit: torch.Tensor) -> torch.Tensor:
        narrow = self.plan.one_channel
        return self.upper.layout.neurons(narrow.value(self._on(narrow.head, scaled, rows), int(unit[0])))

    def _on(self, piece, scaled: torch.Tensor, rows: slice) -> torch.Tensor:
        with torch.no_grad():
            kept = {} if piece.reads_only_starts else piece.prefix(self.x[rows])
        given = dict(zip(piece.starts, self._parts(scaled)))
        return piece.run(kept, len(scaled) // (rows.stop - rows.start), given=given)

    def integrated_gradients(self, steps: int, rows_per_pass: int) -> torch.Tensor:
        """IG of each row's target w.r.t. the lower layers, side by side (rows x their sizes): in
        closed form where there is one (`closed_form`), else by `integrated_gradients` on the forward;
        through the whole model where a shortcut fails on the way."""
        if self.plan.segment is None:
            return self._integrated_gradients(steps, rows_per_pass)
        try:
            return self._integrated_gradients(steps, rows_per_pass)
        except Exception:  # noqa: BLE001 (a shortcut that fails is not taken: the whole model runs)
            self._without_shortcuts()
            return self._integrated_gradients(steps, rows_per_pass)

    def _integrated_gradients(self, steps: int, rows_per_pass: int) -> torch.Tensor:
        if self.closed_form:
            return self.closed_form_integrated_gradients(steps).reshape(len(self.x), -1)
        if self.channel_wise:
            return self._per_channel(steps)
        flat = torch.cat([start.reshape(len(self.x), -1) for start in self.starts], dim=1)
        return integrated_gradients(self.forward, flat, self.targets, steps, rows_per_pass)

    @property
    def channel_wise(self) -> bool:
        """Whether each unit is a function of its own channel of the lower layers alone (a residual
        merge and the activation after it: `ingest.segments.Plan.channel_wise`)."""
        return self.plan.channel_wise

    def _per_channel(self, steps: int) -> torch.Tensor:
        """IG of every row's unit, side by side over the lower layers: the IG of the unit's own channel
        of each lower layer (`_channel_integrated_gradients`; every other channel's is 0)."""
        ig = [torch.zeros_like(start) for start in self.starts]
        for unit, rows in self._unit_rows():
            for whole, part in zip(ig, self._channel_integrated_gradients(rows, unit, steps)):
                whole[rows, unit : unit + 1] = part
        return torch.cat([part.reshape(len(self.x), -1) for part in ig], dim=1)

    def _channel_integrated_gradients(self, rows: slice, unit: int, steps: int) -> list[torch.Tensor]:
        """IG of `unit` on `rows` w.r.t. the unit's own channel of each lower layer."""
        channels = [start[rows, unit : unit + 1] for start in self.starts]
        shapes = [channel.shape[1:] for channel in channels]
        sizes = [shape.numel() for shape in shapes]
        flat = torch.cat([channel.reshape(len(channel), -1) for channel in channels], dim=1)

        def forward(scaled: torch.Tensor, _rows: slice) -> torch.Tensor:
            parts = [part.reshape(len(scaled), *shape) for part, shape in zip(scaled.split(sizes, 1), shapes)]
            return self.upper.layout.neurons(self.plan.segment.channel(parts, unit))

        picked = torch.zeros(len(flat), dtype=torch.long, device=flat.device)
        ig = integrated_gradients(forward, flat, picked, steps, len(flat) * steps)
        return [part.reshape(len(flat), *shape) for part, shape in zip(ig.split(sizes, 1), shapes)]

    def _unit_rows(self) -> list[tuple[int, slice]]:
        """Each explained unit and its rows (a unit's rows are together)."""
        units, counts = torch.unique_consecutive(self.targets, return_counts=True)
        ends = np.cumsum(counts.tolist())
        return [
            (unit, slice(int(end) - count, int(end))) for unit, count, end in zip(units.tolist(), counts.tolist(), ends)
        ]

    @property
    def closed_form(self) -> bool:
        """Whether IG has the closed form of `closed_form_integrated_gradients`: one lower layer, read
        by the Linear or Conv module of the one-unit shortcut itself or through a positively homogeneous
        head (pooling, ReLU)."""
        return self.plan.one_channel is not None and self.plan.one_channel.homogeneous_head

    def closed_form_integrated_gradients(self, steps: int) -> torch.Tensor:
        """IG (as `integrated_gradients`, baseline 0, Gauss-Legendre points a_i, weights w_i) of each
        row's unit u = phi(W_u g(h) + b) (W_u: the module's output channel u, linear; g: the head,
        positively homogeneous with a Jacobian J constant along rays; phi: the channel-wise operations
        and the spatial mean) with respect to the lower layer h, in closed form: g(a h) = a g(h) and
        grad_h u(a h) = J(h)^T W_u^T phi'(a W_u g(h) + b), so
            IG(h) = h * J(h)^T W_u^T sum_i w_i phi'(a_i W_u g(h) + b),
        one forward and one backward pass of the unit's channel instead of one per point."""
        h, ig = self.starts[0], torch.empty_like(self.starts[0])
        for unit, rows in self._unit_rows():
            ig[rows] = self._closed_form(h[rows], unit, steps)
        return ig

    def _closed_form(self, h: torch.Tensor, unit: int, steps: int) -> torch.Tensor:
        narrow = self.plan.one_channel
        alphas, weights = quadrature(steps, h)
        with torch.no_grad():
            response = narrow.response(narrow.head_value(h), unit)  # W_u g(h): rows x 1 (x positions)
        bias = 0.0 if narrow.module.bias is None else narrow.module.bias[unit].detach()
        shape = (-1,) + (1,) * response.ndim
        at = (alphas.view(shape) * response + bias).requires_grad_(True)  # every point's pre-activation
        value = self.upper.layout.neurons(narrow.after(at.flatten(0, 1), unit))
        (slope,) = torch.autograd.grad(value.sum(), at)
        leaf = h.detach().requires_grad_(True)
        summed = (weights.view(shape) * slope).sum(dim=0)
        (grad,) = torch.autograd.grad(narrow.response(narrow.head_value(leaf), unit), leaf, summed)
        return h * grad

    def _parts(self, scaled: torch.Tensor) -> list[torch.Tensor]:
        """Each lower layer's part of the scaled rows, shaped as its tensor."""
        return [part.reshape(len(scaled), *shape) for part, shape in zip(scaled.split(self.sizes, dim=1), self.shapes)]

    def _eager_starts(self, x: torch.Tensor) -> list[torch.Tensor]:
        with torch.no_grad():
            return [
                x
                if (at := self._read_at(lower)) is None
                else tapped_forward(self.model, x, capture=at).movedim(lower.layout.batch_axis, 0)
                for lower in self.lowers
            ]

    def _take_shapes(self, starts: list[torch.Tensor]) -> None:
        self.shapes, self.sizes = [start.shape[1:] for start in starts], [start[0].numel() for start in starts]


def integrated_gradients(
    forward, start: torch.Tensor, targets: torch.Tensor, steps: int, rows_per_pass: int
) -> torch.Tensor:
    """Integrated Gradients from baseline 0 of output `targets[r]` of `forward` for every row r of
    `start`, by Gauss-Legendre quadrature over the path (Captum's default rule).

    Parameters
    ----------
    forward : callable
        forward(scaled, rows) -> outputs (len(scaled) x outputs) for `scaled`, the rows `rows` (a
        slice of `start`) scaled by each quadrature point, point-major.
    start : torch.Tensor
        The inputs (rows first).
    targets : torch.Tensor
        The output column of each row.
    steps : int
        Quadrature points.
    rows_per_pass : int
        Rows (points x inputs) per forward and backward pass.

    Returns
    -------
    torch.Tensor
        start x sum_i w_i df/dx(a_i start), the shape of `start`.

    References
    ----------
    .. [1] Sundararajan, Taly, Yan, "Axiomatic Attribution for Deep Networks", arXiv:1703.01365.
    """
    alphas, weights = quadrature(steps, start)
    scale = (-1,) + (1,) * start.ndim
    total = torch.zeros_like(start)
    chunk = max(1, rows_per_pass // steps)
    for first in range(0, len(start), chunk):
        rows = slice(first, min(first + chunk, len(start)))
        scaled = (alphas.view(scale) * start[rows].detach()).reshape(-1, *start.shape[1:]).requires_grad_(True)
        picked = forward(scaled, rows).gather(1, targets[rows].repeat(steps).unsqueeze(1)).sum()
        (grad,) = torch.autograd.grad(picked, scaled)
        total[rows] = (weights.view(scale) * grad.view(steps, -1, *start.shape[1:])).sum(dim=0)
    return start.detach() * total


def quadrature(steps: int, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Gauss-Legendre points on [0, 1] and their weights (summing to 1), as `like`'s dtype and device."""
    nodes, weights = _gauss_legendre(steps)
    alphas = torch.as_tensor((nodes + 1) / 2, dtype=like.dtype, device=like.device)
    return alphas, torch.as_tensor(weights / 2, dtype=like.dtype, device=like.device)


@lru_cache(maxsize=8)
def _gauss_legendre(steps: int) -> tuple[np.ndarray, np.ndarray]:
    return np.polynomial.legendre.leggauss(steps)
