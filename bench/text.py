"""Scale on text: a BERT-mini-sized classifier (4 layers, hidden 256, intermediate 1,024, 4 heads, 32
tokens; built from a config, nothing downloaded) trained for a minute on a keyword task (class k holds
token 1000 + k among 32 tokens of a 1,024-token vocabulary), then analysed on 2,000 sequences with
the chosen methods (default: all five). Prints each stage's seconds, the peak resident memory, and
the analysis time as a ratio to one forward pass over the probe set in the same process.

    .venv/bin/python bench/text.py [--methods innersight,flow,weights,relay] [--samples 2000]
"""

import argparse
import resource
import time

import numpy as np
import torch
from torch.nn import functional as F

VOCAB, POSITIONS, CLASSES, KEYWORD = 1024, 32, 4, 1000


def keyword_task(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Token ids, attention mask (the last 0-8 positions padded) and labels."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(POSITIONS - 8, POSITIONS + 1, size=n)
    mask = (np.arange(POSITIONS)[None, :] < lengths[:, None]).astype(np.int64)
    ids = rng.integers(1, KEYWORD, size=(n, POSITIONS)) * mask
    y = rng.integers(0, CLASSES, size=n)
    ids[np.arange(n), (rng.random(n) * lengths).astype(int)] = KEYWORD + y
    return ids, mask, y


def bert_mini():
    import transformers

    config = transformers.BertConfig(
        vocab_size=VOCAB,
        hidden_size=256,
        num_hidden_layers=4,
        num_attention_heads=4,
        intermediate_size=1024,
        max_position_embeddings=POSITIONS,
        num_labels=CLASSES,
        pad_token_id=0,
    )
    return transformers.BertForSequenceClassification(config)


def trained(model, ids, mask, y, steps: int = 150):
    torch.manual_seed(0)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    ids, mask, y = map(torch.from_numpy, (ids, mask, y))
    model.train()
    for _ in range(steps):
        batch = torch.randint(0, len(ids), (32,))
        loss = F.cross_entropy(model(ids[batch], attention_mask=mask[batch]).logits, y[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


def main() -> None:
    from neurocypher.ingest import analyze
    from neurocypher.ingest.methods import METHODS

    parser = argparse.ArgumentParser()
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--samples", type=int, default=2000)
    args = parser.parse_args()
    ids, mask, y = keyword_task(args.samples)
    started = time.perf_counter()
    model = trained(bert_mini(), ids, mask, y)
    train_s = time.perf_counter() - started
    with torch.no_grad():
        started = time.perf_counter()
        logits = torch.cat(
            [
                model(torch.from_numpy(ids[i : i + 256]), attention_mask=torch.from_numpy(mask[i : i + 256])).logits
                for i in range(0, len(ids), 256)
            ]
        )
        forward_s = time.perf_counter() - started
    accuracy = float((logits.argmax(1).numpy() == y).mean())
    started = time.perf_counter()
    a = analyze(model, ids, y, name="bench-text", mask=mask, methods=tuple(args.methods.split(",")))
    analysis_s = time.perf_counter() - started
    peak_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(
        f"BERT-mini: {len(a.layers)} layers, {sum(a.widths)} neurons; trained {train_s:.0f} s, accuracy {accuracy:.3f}"
    )
    print("stages: " + ", ".join(f"{stage} {seconds:.0f} s" for stage, seconds in a.stage_seconds.items()))
    print(
        f"text: seconds={analysis_s:.0f} ratio_to_forward={analysis_s / forward_s:.0f} peak_gib={peak_gib:.1f} "
        f"samples={len(ids)} methods={args.methods}"
    )


if __name__ == "__main__":
    main()
