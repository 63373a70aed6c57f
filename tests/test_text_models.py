"""Text and Hugging Face models as users bring them (tiny configs built with `transformers`, trained
for seconds): token data from files and factories, the layer DAG of BERT, GPT-2, ViT and a Hugging
Face ResNet with no flag, padding left out, the keyword task's answer, and the command line end to
end."""

import numpy as np
import pytest
import text_models as tm
import torch
from helpers import cli

from neurocypher.errors import UserError
from neurocypher.ingest import analyze, write
from neurocypher.ingest.data import load_data
from neurocypher.ingest.neuronize import ClassScores, record
from neurocypher.ingest.tokens import Tokens, pack
from neurocypher.queries import connect

EVERY_METHOD = ("innersight", "neurflow", "flow", "weights", "relay")


@pytest.fixture(scope="module")
def keyword():
    return tm.keyword_task()


@pytest.fixture(scope="module")
def bert(keyword):
    return tm.trained(tm.bert(), keyword["input_ids"], keyword["labels"], keyword["attention_mask"])


@pytest.fixture(scope="module")
def gpt2(keyword):
    return tm.trained(tm.gpt2(), keyword["input_ids"], keyword["labels"], keyword["attention_mask"])


def test_token_data_from_files_and_factories(tmp_path, keyword):
    """Integer ids stay integer; the mask and vocabulary come along from .npz files and from factories
    returning dicts (Hugging Face names), tuples, torch Datasets or a tokenizer-like vocabulary."""
    np.savez(
        tmp_path / "text.npz", X=keyword["input_ids"], y=keyword["labels"], attention_mask=keyword["attention_mask"]
    )
    from_file = load_data(str(tmp_path / "text.npz"))
    assert from_file.X.dtype == np.int64 and (from_file.mask == keyword["attention_mask"]).all()
    from_factory = load_data("tests/text_models.py:keyword_data")
    assert (from_factory.X == tm.keyword_task(400, seed=1)["input_ids"]).all() and from_factory.vocab == tm.VOCAB_NAMES
    assert from_factory.image_shape is None
    (tmp_path / "factories.py").write_text(
        "import numpy as np, torch\n"
        "X = np.arange(24).reshape(6, 4); y = np.arange(6) % 2\n"
        "class Pairs(torch.utils.data.Dataset):\n"
        "    def __len__(self): return 6\n"
        "    def __getitem__(self, i): return {'input_ids': torch.as_tensor(X[i]), 'labels': int(y[i])}\n"
        "class Tokenizer:\n"
        "    def __len__(self): return 24\n"
        "    def convert_ids_to_tokens(self, ids): return [f't{i}' for i in ids]\n"
        "def pairs(): return (X, y)\n"
        "def dataset(): return Pairs()\n"
        "def tokenized(): return {'input_ids': X, 'labels': y, 'tokenizer': Tokenizer()}\n"
        "def vocab_dict(): return {'X': X, 'y': y, 'vocab': {f'v{i}': i for i in range(24)}}\n"
        "def nothing(): return 'text'\n"
    )
    for factory in ("pairs", "dataset", "tokenized", "vocab_dict"):
        data = load_data(f"{tmp_path}/factories.py:{factory}")
        assert (data.X == np.arange(24).reshape(6, 4)).all() and (data.y == np.arange(6) % 2).all(), factory
    assert load_data(f"{tmp_path}/factories.py:tokenized").vocab[3] == "t3"
    assert load_data(f"{tmp_path}/factories.py:vocab_dict").vocab[3] == "v3"
    with pytest.raises(UserError, match="returned a str; return a dict with X and y"):
        load_data(f"{tmp_path}/factories.py:nothing")
    refused = cli(
        "ingest", "--model", "tests/text_models.py:bert", "--data", f"{tmp_path}/factories.py:gone", "--name", "t"
    )
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1 and "has no function 'gone'" in refused.stderr


def test_tokens_count_delete_and_sum_per_token():
    """Input neurons are the tokens that occur at real positions; deleting one masks it out and pads it."""
    ids = np.array([[5, 7, 5, 0], [9, 5, 3, 3]])
    mask = np.array([[1, 1, 1, 0], [1, 1, 1, 1]])
    packed = pack(ids, mask)
    tokens = Tokens.of(packed, [f"w{i}" for i in range(10)])
    assert tokens.ids.tolist() == [3, 5, 7, 9] and tokens.names == ["w3", "w5", "w7", "w9"]
    assert tokens.counts(packed).tolist() == [[0, 2, 1, 0], [2, 1, 0, 1]]
    deleted = tokens.delete(torch.from_numpy(packed), torch.tensor([[False, True, False, False]])).numpy()
    assert deleted[:, 0].tolist() == [[0, 7, 0, 0], [9, 0, 3, 3]] and deleted[:, 1].tolist() == [
        [0, 1, 0, 0],
        [1, 0, 1, 1],
    ]
    values = torch.arange(8.0).reshape(2, 4)
    ids_t, valid = torch.from_numpy(ids), torch.from_numpy(mask).bool()
    assert tokens.per_token(values, ids_t, valid).tolist() == [[0, 2, 1, 0], [13, 5, 0, 4]]


def test_fasttext_every_method_finds_each_keyword(keyword):
    """An nn.Embedding model on token ids, with all five methods: the keywords are every class's top
    attributions, and class k's top relay-path chain starts from an input community with its keyword."""
    torch.manual_seed(0)  # the initial weights, whatever the tests before this one drew
    model = tm.trained(tm.FastText(), keyword["input_ids"], keyword["labels"], keyword["attention_mask"])
    a = analyze(
        model,
        keyword["input_ids"],
        keyword["labels"],
        name="t-fasttext",
        mask=keyword["attention_mask"],
        vocab=keyword["vocab"],
        methods=EVERY_METHOD,
    )
    assert a.accuracy > 0.95 and a.feature_names == [n for n in tm.VOCAB_NAMES if n != "[PAD]"]
    keys = [f"key{k}" for k in range(tm.CLASSES)]
    for k in range(tm.CLASSES):  # path flow is unsigned: a logit carries the other keywords too, as evidence against
        assert {a.feature_names[i] for i in np.argsort(-a.attribution[k])[: tm.CLASSES]} == set(keys), k
    assert a.metrics["deletion_auc_attribution"] < a.metrics["deletion_auc_random"]
    with connect() as store:
        write(store, a, replace=True)
        named = {r["name"] for r in store.ask("attribution", model="t-fasttext", limit=tm.CLASSES, **{"class": 2})}
        assert named == set(keys)
        for k in range(tm.CLASSES):
            chain = store.ask("relay-path", model="t-fasttext", limit=1, **{"class": k})[0]  # innersight, closing
            members = store.read(
                "MATCH (n:Neuron)-[:MEMBER_OF]->(:Community {uid: $uid}) RETURN n.name AS name",
                {"uid": chain["chain"][0]},
            )
            named = {r["name"] for r in members}
            assert keys[k] in named and keys[k] in chain["inputs"] and len(named) < len(a.feature_names) / 2, k


def test_bert_from_the_command_line(tmp_path, bert):
    """BERT from a factory, with weights and a data factory and no other flag than the methods: every block's query,
    key, value, attention output, MLP inner layer (after GELUActivation) and both residual merges,
    short unique names, the class scores read at `logits`, and relay-path answering with tokens."""
    torch.save(bert.state_dict(), tmp_path / "bert.pt")
    done = cli(
        "ingest",
        "--model",
        "tests/text_models.py:bert",
        "--weights",
        str(tmp_path / "bert.pt"),
        "--data",
        "tests/text_models.py:keyword_data",
        "--name",
        "t-bert",
        "--replace",
        "--methods",
        "innersight,flow,weights,relay",  # NeurFlow's IG runs the whole model here (no fx trace): minutes
        timeout=900,
    )
    assert done.returncode == 0, done.stderr
    dag = {line.split(": ")[0].split()[-1]: line for line in done.stdout.splitlines() if line.startswith("    L")}
    assert "63 tokens that occur in the data" in dag["input"] and "at bert.embeddings.word_embeddings" in dag["input"]
    assert "the class scores are item 'logits' of the model's output" in done.stdout
    for block in (0, 1):
        for layer in ("attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense"):
            assert (
                ": linear 32, " in dag[f"layer.{block}.{layer}"] and "mean over tokens" in dag[f"layer.{block}.{layer}"]
            )
        assert ": linear 64, after GELUActivation, mean over tokens" in dag[f"layer.{block}.intermediate.dense"]
        assert ": merge 32, " in dag[f"layer.{block}.attention.output.add"]
        assert ": merge 32, " in dag[f"layer.{block}.output.add"]
    assert "classifier" not in done.stdout, "the classifier is the output layer, not a hidden one too"
    answer = cli("query", "relay-path", "--param", "model=t-bert", "--param", "class=1", "--format", "json")
    assert answer.returncode == 0, answer.stderr
    with connect() as store:
        paths = store.read(
            "MATCH (l:Layer {model_id: 't-bert'}) WHERE l.path <> '' RETURN l.name AS name, l.path AS path"
        )
    assert len({p["name"] for p in paths}) == len(paths) and all(p["path"].endswith(p["name"]) for p in paths)


def test_gpt2_conv1d_layers_and_pooled_scores(keyword, gpt2):
    """GPT-2: its Conv1D modules are layers (c_attn, c_proj, c_fc), the class scores picked at the last
    real token make `score` the output layer, fed by the last residual merge."""
    a = analyze(
        gpt2,
        keyword["input_ids"],
        keyword["labels"],
        name="t-gpt2",
        mask=keyword["attention_mask"],
        methods=("flow",),
        deletion=False,
        chain_draws=0,
    )
    names = [layer.name for layer in a.layers]
    for block in (0, 1):
        for layer in ("attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj", "add", "add#1"):
            assert f"h.{block}.{layer}" in names, layer
    assert a.layers[names.index("h.0.mlp.c_fc")].activation == "NewGELUActivation"
    assert a.layers[-1].module == "score" and a.layers[-1].inputs == (names.index("h.1.add#1"),)
    assert "score" not in names and a.notes["logits"] == "logits"


def test_padding_is_left_out_of_every_token_reduction(keyword, bert):
    """A sequence read with padding after it gives the same layer values as the sequence alone."""
    ids, mask = keyword["input_ids"][:40], keyword["attention_mask"][:40]
    short = mask.sum(axis=1) == tm.POSITIONS - 4
    assert short.sum() >= 3
    padded = pack(ids[short], mask[short])
    alone = pack(ids[short][:, : tm.POSITIONS - 4], mask[short][:, : tm.POSITIONS - 4])
    for token_reduce in ("mean", "max", "last"):
        readings = [
            record(ClassScores(bert, tokens=Tokens.of(x)), x, token_reduce=token_reduce) for x in (padded, alone)
        ]
        for a, b in zip(readings[0].hidden, readings[1].hidden):
            assert np.allclose(a, b, atol=1e-4), token_reduce
        assert np.allclose(readings[0].outputs, readings[1].outputs, atol=1e-4)


@pytest.mark.parametrize("factory", ["vit", "hf_resnet"])
def test_vision_transformers_and_resnets_need_no_flag(digits, factory):
    """ViT and the Hugging Face ResNet on 8x8 images with no --logits: the MLP's inner layer is read
    after Hugging Face's activation module, each block's merges are found, the classifier is the
    output layer once, and every name is short, unique and the tail of its full path."""
    X = digits.X.reshape(-1, 1, 8, 8)
    model = tm.trained(getattr(tm, factory)(), X, digits.y, steps=100)
    a = analyze(model, X[:300], digits.y[:300], name=f"t-{factory}", methods=("flow",), deletion=False, chain_draws=0)
    names = [layer.name for layer in a.layers]
    assert len(set(names)) == len(names) and all(layer.path.endswith(layer.name) for layer in a.layers[1:-1])
    assert a.layers[-1].width == 10 and a.notes["logits"] == "logits"
    if factory == "vit":
        for block in (0, 1):
            assert a.layers[names.index(f"layers.{block}.mlp.fc1")].activation == "GELUActivation"
            assert f"layers.{block}.add" in names and f"layers.{block}.add#1" in names
        assert a.layers[-1].module == "classifier"
    else:
        assert a.layers[-1].module == "classifier.1" and not any(layer.width == 10 for layer in a.layers[1:-1])
        assert "stages.1.layers.0.add" in names and "shortcut.convolution" in names


def test_neurflow_runs_through_a_model_that_adds_in_place(digits):
    """HF ResNet adds its shortcut in place (`hidden_state += residual`) into the layer output whose
    gradients NeurFlow takes: the pass writes into a copy, so Integrated Gradients run through it."""
    X = digits.X[:120].reshape(-1, 1, 8, 8)
    a = analyze(tm.hf_resnet(), X, digits.y[:120], name="t-inplace", methods=("neurflow",), chain_draws=0)
    assert any(c.method == "neurflow" and c.layer > 0 for c in a.communities)
    assert len(a.metrics["fidelity_core"]) == 10
