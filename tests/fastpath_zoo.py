"""Modules that do not compute what their class usually computes, as pruning, sparsity and fine-tuning
code makes them, and a model whose torch.fx trace is not what it runs: each an MLP of 64 digits
features -> 50 -> 50 -> 10 (50 wide, as the top-k concept inputs of NeurFlow, so that a weight matrix
has a batch's length). Also loadable as `--model tests/fastpath_zoo.py:NAME`."""

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils import parametrizations, prune

WIDTH = 50


class MaskedLinear(nn.Linear):
    """A Linear whose weight is masked in `forward` (structured-sparsity code)."""

    def __init__(self, n_in: int, n_out: int, seed: int = 0):
        super().__init__(n_in, n_out)
        generator = torch.Generator().manual_seed(seed)
        self.register_buffer("mask", (torch.rand(n_out, n_in, generator=generator) > 0.5).float())

    def forward(self, x):
        return F.linear(x, self.weight * self.mask, self.bias)


class LoRALinear(nn.Module):
    """A frozen Linear plus a trainable low-rank update B(A(x)), scaled."""

    def __init__(self, n_in: int, n_out: int, rank: int = 4, scale: float = 2.0):
        super().__init__()
        self.base = nn.Linear(n_in, n_out)
        self.base.requires_grad_(False)
        self.lora_a = nn.Linear(n_in, rank, bias=False)
        self.lora_b = nn.Linear(rank, n_out, bias=False)
        self.scale = scale

    def forward(self, x):
        return self.base(x) + self.scale * self.lora_b(self.lora_a(x))


class Gate(nn.Module):
    """A leaf module with its own parameters that is not affine: x * sigmoid(a x + b), per feature."""

    def __init__(self, width: int):
        super().__init__()
        self.a = nn.Parameter(torch.ones(width))
        self.b = nn.Parameter(torch.zeros(width))

    def forward(self, x):
        return x * torch.sigmoid(self.a * x + self.b)


class MLP(nn.Module):
    """64 -> 50 -> 50 -> 10 with ReLU, from the three given modules."""

    def __init__(self, first: nn.Module, second: nn.Module, out: nn.Module):
        super().__init__()
        self.first, self.second, self.out = first, second, out

    def forward(self, x):
        return self.out(F.relu(self.second(F.relu(self.first(x)))))


class Twice(nn.Module):
    """One Linear called twice: 64 -> 50 -> 50 -> 50 (the same module) -> 10."""

    def __init__(self):
        super().__init__()
        self.first, self.shared, self.out = nn.Linear(64, WIDTH), nn.Linear(WIDTH, WIDTH), nn.Linear(WIDTH, 10)

    def forward(self, x):
        h = F.relu(self.first(x))
        return self.out(F.relu(self.shared(F.relu(self.shared(h)))))


class Gated(nn.Module):
    """64 -> 50, the custom `Gate`, -> 50 -> 10."""

    def __init__(self):
        super().__init__()
        self.first, self.gate = nn.Linear(64, WIDTH), Gate(WIDTH)
        self.second, self.out = nn.Linear(WIDTH, WIDTH), nn.Linear(WIDTH, 10)

    def forward(self, x):
        return self.out(F.relu(self.second(self.gate(self.first(x)))))


class TracedOtherwise(MLP):
    """64 -> 50 -> 50 -> 10 whose second layer is doubled when the model runs, but not when torch.fx
    traces it (it asks for the type of the value): its trace computes other class scores, so no plan
    to them is taken."""

    def __init__(self):
        torch.manual_seed(0)
        super().__init__(nn.Linear(64, WIDTH), nn.Linear(WIDTH, WIDTH), nn.Linear(WIDTH, 10))

    def forward(self, x):
        hidden = F.relu(self.second(F.relu(self.first(x))))
        return self.out(hidden * (2.0 if isinstance(hidden, torch.Tensor) else 1.0))


def masked():
    torch.manual_seed(0)
    return MLP(MaskedLinear(64, WIDTH), MaskedLinear(WIDTH, WIDTH, seed=1), nn.Linear(WIDTH, 10))


def pruned():
    torch.manual_seed(0)
    model = MLP(nn.Linear(64, WIDTH), nn.Linear(WIDTH, WIDTH), nn.Linear(WIDTH, 10))
    prune.random_unstructured(model.second, "weight", amount=0.5)
    return model


def weight_normed():
    torch.manual_seed(0)
    second = parametrizations.weight_norm(nn.Linear(WIDTH, WIDTH))
    return MLP(nn.Linear(64, WIDTH), second, nn.Linear(WIDTH, 10))


def lora():
    torch.manual_seed(0)
    return MLP(nn.Linear(64, WIDTH), LoRALinear(WIDTH, WIDTH), nn.Linear(WIDTH, 10))


def twice():
    torch.manual_seed(0)
    return Twice()


def gated():
    torch.manual_seed(0)
    return Gated()


ZOO = {"masked": masked, "pruned": pruned, "weight_normed": weight_normed, "lora": lora, "twice": twice}
ZOO |= {"gated": gated, "traced_otherwise": TracedOtherwise}


def trained(model: nn.Module, X, y, steps: int = 150) -> nn.Module:
    """`model` trained on (X, y) with Adam, seeded; in eval mode (a pruned model keeps its mask)."""
    torch.manual_seed(0)
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    X, y = torch.as_tensor(X), torch.as_tensor(y)
    for _ in range(steps):
        batch = torch.randint(0, len(X), (128,))
        loss = F.cross_entropy(model(X[batch]), y[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()
