"""Text and Hugging Face models with a known answer, built from tiny configs (nothing is downloaded)
and trained for seconds on the CPU.

The keyword task: 12 tokens from a vocabulary of 64; ids 1-59 are filler, drawn at random; class k
holds its keyword token 60 + k at a random position; some sequences end in padding (id 0, masked
out). So class k's evidence is exactly one token.
"""

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

VOCAB, POSITIONS, CLASSES = 64, 12, 4
KEYWORD = 60  # class k's keyword is token KEYWORD + k
VOCAB_NAMES = ["[PAD]"] + [f"w{i}" for i in range(1, KEYWORD)] + [f"key{k}" for k in range(CLASSES)]


def keyword_task(n: int = 800, seed: int = 0) -> dict:
    """Token ids, attention mask, labels and vocabulary of the keyword task."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(POSITIONS - 4, POSITIONS + 1, size=n)
    mask = (np.arange(POSITIONS)[None, :] < lengths[:, None]).astype(np.int64)
    ids = rng.integers(1, KEYWORD, size=(n, POSITIONS)) * mask
    y = rng.integers(0, CLASSES, size=n)
    ids[np.arange(n), (rng.random(n) * lengths).astype(int)] = KEYWORD + y
    return {"input_ids": ids, "attention_mask": mask, "labels": y, "vocab": VOCAB_NAMES}


class FastText(nn.Module):
    """fastText-style: token embeddings averaged over the real tokens, then an MLP."""

    def __init__(self, width: int = 16, hidden: int = 32):
        super().__init__()
        self.embed = nn.Embedding(VOCAB, width)
        self.hidden = nn.Linear(width, hidden)
        self.out = nn.Linear(hidden, CLASSES)

    def forward(self, input_ids, attention_mask=None):
        mask = torch.ones_like(input_ids) if attention_mask is None else attention_mask
        weight = mask.unsqueeze(2).float()
        mean = (self.embed(input_ids) * weight).sum(1) / weight.sum(1).clamp(min=1)
        return self.out(F.relu(self.hidden(mean)))


def bert():
    import transformers

    config = transformers.BertConfig(
        vocab_size=VOCAB,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=16,
        num_labels=CLASSES,
        pad_token_id=0,
    )
    return transformers.BertForSequenceClassification(config)


def gpt2():
    import transformers

    config = transformers.GPT2Config(
        vocab_size=VOCAB,
        n_embd=32,
        n_layer=2,
        n_head=2,
        n_positions=16,
        num_labels=CLASSES,
        pad_token_id=0,
        bos_token_id=0,
        eos_token_id=0,
    )
    return transformers.GPT2ForSequenceClassification(config)


def vit():
    import transformers

    config = transformers.ViTConfig(
        image_size=8,
        patch_size=2,
        num_channels=1,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        num_labels=10,
    )
    return transformers.ViTForImageClassification(config)


def hf_resnet():
    import transformers

    config = transformers.ResNetConfig(
        num_channels=1, embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1], layer_type="basic", num_labels=10
    )
    return transformers.ResNetForImageClassification(config)


def trained(model: nn.Module, X: np.ndarray, y: np.ndarray, mask: np.ndarray | None = None, steps: int = 200):
    """`model` trained with Adam on (X, y) for `steps` batches of 64, seeded; in eval mode."""
    torch.manual_seed(0)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    X, y = torch.from_numpy(X), torch.from_numpy(y)
    kwargs = {} if mask is None else {"attention_mask": torch.from_numpy(mask)}
    model.train()
    for _ in range(steps):
        batch = torch.randint(0, len(X), (64,))
        output = model(X[batch], **{key: value[batch] for key, value in kwargs.items()})
        logits = output.logits if hasattr(output, "logits") else output
        loss = F.cross_entropy(logits, y[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


def accuracy(model: nn.Module, X: np.ndarray, y: np.ndarray, mask: np.ndarray | None = None) -> float:
    with torch.no_grad():
        kwargs = {} if mask is None else {"attention_mask": torch.from_numpy(mask)}
        output = model(torch.from_numpy(X), **kwargs)
    logits = output.logits if hasattr(output, "logits") else output
    return float((logits.argmax(1).numpy() == y).mean())


def keyword_data() -> dict:
    """400 held-out sequences of the keyword task, as `--data tests/text_models.py:keyword_data` loads them."""
    return keyword_task(400, seed=1)
