"""Relay information against plug-in entropies counted sample by sample, and relay modules against ground truth:
composite networks of one-vs-rest specialists for every digit (unequal widths 2, 3, 4; two hidden layers)."""

import math
from collections import Counter

import numpy as np
import pytest
import torch
from sklearn.cluster import KMeans

from neurocypher.ingest.data import load_data
from neurocypher.ingest.groundtruth import composite, hidden_activations
from neurocypher.ingest.relay import (
    _MixedStates,
    binarize,
    class_indicators,
    conditional_mi,
    greedy_relay,
    joint_states,
    module_size,
    relay_information,
    set_relay_bits,
    state_cap,
)


def entropy(*columns) -> float:
    """Plug-in joint entropy in bits, counted sample by sample (no NumPy tricks)."""
    joint = Counter(zip(*columns))
    n = sum(joint.values())
    return -sum(c / n * math.log2(c / n) for c in joint.values())


def brute_cmi(a, b, s) -> float:
    return entropy(a, s) + entropy(b, s) - entropy(a, b, s) - entropy(s)


def rows(bits: np.ndarray) -> list[tuple]:
    return [tuple(r) for r in bits.tolist()]


def brute_set_relay(bits, members, a, b) -> float:
    """I(X_in; X_out | L \\ S) - I(X_in; X_out | L) from entropies of the rows' tuples."""
    rest = np.setdiff1d(np.arange(bits.shape[1]), members)
    return brute_cmi(a, b, rows(bits[:, rest])) - brute_cmi(a, b, rows(bits))


@pytest.fixture(scope="module")
def toy():
    """600 samples, 3 classes, 7 neurons: some copy X_in or X_out with noise, one is their XOR, the rest noise."""
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 600)
    predictions = np.where(rng.random(600) < 0.8, labels, rng.integers(0, 3, 600))
    x_in, x_out = class_indicators(labels, predictions, 3)
    flip = [rng.random(600) < p for p in (0.1, 0.2, 0.3, 0.4)]
    bits = np.column_stack(
        [
            x_in[0] ^ flip[0],
            x_out[0] ^ flip[1],
            x_in[1] ^ x_out[1],
            x_out[2] ^ flip[2],
            rng.integers(0, 2, 600),
            x_in[2] ^ flip[3],
            rng.integers(0, 2, 600),
        ]
    ).astype(bool)
    return bits, x_in, x_out


def test_conditional_mi_and_set_relay_bits_match_brute_force(toy):
    bits, x_in, x_out = toy
    for members in ([0], [1, 2], [3, 4, 5], [0, 6], list(range(7))):
        got = set_relay_bits(bits, members, x_in, x_out)
        want = [brute_set_relay(bits, members, x_in[c].tolist(), x_out[c].tolist()) for c in range(3)]
        np.testing.assert_allclose(got, want, atol=1e-12)
    mask = np.zeros(7, dtype=bool)
    mask[[1, 2]] = True
    np.testing.assert_allclose(set_relay_bits(bits, mask, x_in, x_out), set_relay_bits(bits, [1, 2], x_in, x_out))
    state = joint_states(bits[:, :3])
    np.testing.assert_allclose(
        conditional_mi(x_in, x_out, state),
        [brute_cmi(x_in[c].tolist(), x_out[c].tolist(), rows(bits[:, :3])) for c in range(3)],
        atol=1e-12,
    )


def test_relay_given_nothing_is_the_co_information(toy):
    bits, x_in, x_out = toy
    co = relay_information(bits[:, [0, 3]], bits[:, :0], x_in, x_out)
    for c in range(3):
        a, b = x_in[c].tolist(), x_out[c].tolist()
        mi = entropy(a) + entropy(b) - entropy(a, b)
        assert co[c] == pytest.approx(mi - brute_cmi(a, b, rows(bits[:, [0, 3]])), abs=1e-12)


def test_xor_is_synergy_and_a_copy_of_the_label_relays_everything():
    rng = np.random.default_rng(1)
    x_in = rng.integers(0, 2, 4000)
    key = rng.integers(0, 2, (4000, 1)).astype(bool)
    x_out = x_in ^ key[:, 0]  # the output alone says nothing about the input; with the key, everything
    assert relay_information(key, key[:, :0], x_in, x_out)[0] < -0.9
    copy = x_in[:, None].astype(bool)
    full = entropy(x_in.tolist()) * 2 - entropy(x_in.tolist(), x_in.tolist())
    assert set_relay_bits(copy, [0], x_in, x_in)[0] == pytest.approx(full, abs=1e-12)


def same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether two labellings group the samples identically."""
    return len(np.unique(np.column_stack([a, b]), axis=0)) == len(np.unique(a)) == len(np.unique(b))


def test_joint_states_are_exact_and_coarse_grained_on_request():
    rng = np.random.default_rng(2)
    bits = (rng.random((300, 40)) < 0.5)[rng.integers(0, 300, 3000)]  # 40 columns: more than one 31-column chunk
    for columns in (slice(0, 3), slice(0, 40)):
        rows_state = np.unique(bits[:, columns], axis=0, return_inverse=True)[1].ravel()
        assert same_partition(joint_states(bits[:, columns]), rows_state)
    assert len(np.unique(joint_states(bits, max_states=16))) == 16
    np.testing.assert_array_equal(joint_states(bits[:, :3], max_states=16), joint_states(bits[:, :3]))


def test_mixed_states_score_every_candidate_bit_as_y0_is_refined(toy):
    bits, x_in, x_out = toy
    mixed, moved = _MixedStates(bits, x_in[0], x_out[0], np.zeros(len(bits), dtype=np.int64)), []
    for j in (0, 3, 1, 6):
        want = [conditional_mi(x_in[0], x_out[0], joint_states(bits[:, moved + [k]]))[0] for k in range(7)]
        np.testing.assert_allclose(mixed.scores(), want, atol=1e-12)
        mixed.move(j)
        moved.append(j)


def within_ss(values: np.ndarray, split: np.ndarray) -> float:
    return float(sum(((values[s] - values[s].mean()) ** 2).sum() for s in (split, ~split)))


def test_binarize_is_the_exact_two_means_split():
    rng = np.random.default_rng(3)
    acts = np.column_stack(
        [
            np.tanh(rng.normal(0, 2, 1000)),
            np.maximum(rng.normal(0, 1, 1000), 0),
            np.r_[rng.normal(-1, 0.3, 700), rng.normal(2, 0.5, 300)],
            np.ones(1000),
        ]
    )
    bits = binarize(acts)
    for j in range(3):
        labels = KMeans(2, n_init=3, random_state=0).fit_predict(acts[:, [j]]).astype(bool)
        assert within_ss(acts[:, j], bits[:, j]) <= within_ss(acts[:, j], labels) + 1e-9
    assert not bits[:, 3].any()  # a constant neuron has one state
    assert (binarize(acts[:, :3], "median").mean(axis=0) == 0.5).all()


def brute_greedy(bits, a, b) -> tuple[list[int], list[float]]:
    """Algorithm 1 with every candidate's I_R counted from entropies."""
    remaining, order = list(range(bits.shape[1])), []
    curve = [brute_set_relay(bits, remaining, a, b)]
    while remaining:
        kept = [
            brute_set_relay(bits, [r for r in remaining if r != j], a, b) if len(remaining) > 1 else 0.0
            for j in remaining
        ]
        best = int(np.argmax(kept))
        order.append(remaining.pop(best))
        curve.append(kept[best])
    return order, curve


def test_greedy_matches_algorithm_1_counted_by_hand(toy):
    bits, x_in, x_out = toy
    for c in range(3):
        search = greedy_relay(bits, x_in[c], x_out[c])
        order, curve = brute_greedy(bits, x_in[c].tolist(), x_out[c].tolist())
        assert search.order.tolist() == order
        np.testing.assert_allclose(search.curve, curve, atol=1e-12)
        for i in range(len(order)):  # curve[i]: I_R of the Y_R left after i moves
            assert search.curve[i] == pytest.approx(set_relay_bits(bits, search.order[i:], x_in, x_out)[c], abs=1e-12)


def test_every_greedy_move_is_a_best_one_on_a_wider_layer():
    """24 neurons (noisy copies of several classes' X_in and X_out, and noise) on 1,000 samples, where
    moves split and empty many mixed states: each move leaves the most I_R counted from entropies
    (to 1e-9 bits), and the curve is the I_R left after each move."""
    rng = np.random.default_rng(5)
    labels = rng.integers(0, 4, 1000)
    predictions = np.where(rng.random(1000) < 0.7, labels, rng.integers(0, 4, 1000))
    x_in, x_out = class_indicators(labels, predictions, 4)
    sources = [x_in[c % 4] if c % 2 else x_out[c % 4] for c in range(16)]
    noisy = [source ^ (rng.random(1000) < 0.05 + 0.02 * c) for c, source in enumerate(sources)]
    bits = np.column_stack(noisy + [rng.integers(0, 2, 1000) for _ in range(8)]).astype(bool)
    search = greedy_relay(bits, x_in[1], x_out[1])
    a, b = x_in[1].tolist(), x_out[1].tolist()
    remaining = list(range(bits.shape[1]))
    for step, moved in enumerate(search.order[:-1]):
        left = {j: brute_set_relay(bits, [r for r in remaining if r != j], a, b) for j in remaining}
        assert left[moved] >= max(left.values()) - 1e-9, step
        assert search.curve[step + 1] == pytest.approx(left[moved], abs=1e-9)
        remaining.remove(moved)


def test_greedy_keeps_the_scores_when_a_move_splits_no_mixed_state(toy, monkeypatch):
    """Dead neurons and a copy of a neuron split no state where X_in and X_out both vary once their
    twin is moved: the greedy keeps the other candidates' scores instead of recomputing them, and
    still follows Algorithm 1 counted by hand."""
    bits, x_in, x_out = toy
    wider = np.column_stack([bits[:, :2], np.zeros(600, bool), bits[:, 2:], bits[:, 0], np.zeros(600, bool)])
    counted = []
    recount = _MixedStates._counts

    def counting(self, samples, *args):
        counted.append(len(samples))
        return recount(self, samples, *args)

    monkeypatch.setattr(_MixedStates, "_counts", counting)
    for c in range(3):
        search = greedy_relay(wider, x_in[c], x_out[c])
        order, curve = brute_greedy(wider, x_in[c].tolist(), x_out[c].tolist())
        assert search.order.tolist() == order
        np.testing.assert_allclose(search.curve, curve, atol=1e-12)
    assert len(counted) < 3 * (wider.shape[1] + 1)  # some moves recounted nothing


def test_relay_score_is_the_references_removal_into_vec(toy):
    bits, x_in, x_out = toy
    search = greedy_relay(bits, x_in[1], x_out[1])
    n = len(search.order)
    remaining_after = [search.order[i + 1 :] for i in range(n)]  # the reference's `res`: Y_R after move i + 1
    H = search.curve[1:]  # the reference's H: I_R after move i + 1
    want = np.zeros(n)
    for i, left in enumerate(remaining_after):
        for e in left:
            want[e] += H[0] - H[i]
    np.testing.assert_allclose(search.score, want, atol=1e-12)


def test_module_size_rule():
    # from the end: 1.0 -> 0 (all), 0.8 -> 0.2 (75 % of it: essential), 0.85 -> 0.8 (6 %: redundant, stop)
    assert module_size(np.array([1.2, 0.85, 0.8, 0.2, 0.0])) == 2
    assert module_size(np.array([1.0, 0.6, 0.25, 0.1, 0.0])) == 3  # the first move cost 40 % < 50 %
    assert module_size(np.array([1.0, 0.99, 0.98, 0.0])) == 1
    assert module_size(np.array([1.0, 0.9, 0.0, 0.0, 0.0])) == 3  # a move with nothing left to lose joins
    assert module_size(np.array([1.0, 0.9, 0.015, 0.01, 0.0])) == 3  # and one with less than 2 % of the full I_R
    assert module_size(np.array([1.0, 0.9, 0.5, 0.0]), essential=0.9) == 1


def test_greedy_with_coarse_grained_states_runs(toy):
    bits, x_in, x_out = toy
    search = greedy_relay(bits, x_in[0], x_out[0], max_states=4)
    assert sorted(search.order.tolist()) == list(range(7)) and search.curve[-1] == 0 and len(search.curve) == 8


def test_state_cap_keeps_states_exact_up_to_n_over_32(toy):
    assert state_cap(1797, 32) == 56 and state_cap(5000, 32) == 156 and state_cap(40, 32) == 2
    assert state_cap(1797, 0) is None
    bits, x_in, x_out = toy  # 7 bits on 600 samples: at most 128 states, below a cap of 600 // 2 = 300
    exact, capped = greedy_relay(bits, x_in[0], x_out[0]), greedy_relay(bits, x_in[0], x_out[0], max_states=300)
    assert capped.order.tolist() == exact.order.tolist() and np.allclose(capped.curve, exact.curve, atol=1e-12)


@pytest.fixture(scope="module", params=["tanh", "relu"])
def searched(request):
    """A composite on digits, its binarised hidden layers, and every (layer, class) greedy search."""
    data = load_data("sklearn:digits")
    truth = composite(data.X, data.y, widths=(2, 3, 4), activation=request.param)
    acts = hidden_activations(truth.model, truth.X)
    with torch.no_grad():
        predictions = truth.model(torch.from_numpy(truth.X)).argmax(1).numpy()
    x_in, x_out = class_indicators(truth.y, predictions, 10)
    bits = [binarize(a) for a in acts]
    searches = [[greedy_relay(b, x_in[c], x_out[c]) for c in range(10)] for b in bits]
    return request.param, truth, bits, x_in, x_out, searches


def jaccard(a, b) -> float:
    a, b = set(np.asarray(a).tolist()), set(np.asarray(b).tolist())
    return len(a & b) / len(a | b)


# measured on these networks (digits, widths 2, 3, 4 cycled, two hidden layers, seed 0), per hidden layer:
# the mean Jaccard of the module with the specialist, the classes whose last greedy neuron is the specialist's,
# the classes whose specialist relays more bits of it than the other specialists do on average / than any other
MEASURED = {
    "tanh": {"module": (0.46, 0.87), "last": (7, 9), "over_mean": (9, 10), "max": (7, 9)},
    "relu": {"module": (0.41, 0.60), "last": (8, 9), "over_mean": (7, 9), "max": (6, 9)},
}


def test_greedy_ends_with_the_specialist_and_the_module_recovers_it(searched):
    activation, truth, _, _, _, searches = searched
    for layer, blocks in enumerate(truth.blocks):
        modules = [jaccard(s.module, np.flatnonzero(blocks == c)) for c, s in enumerate(searches[layer])]
        last = sum(blocks[s.order[-1]] == c for c, s in enumerate(searches[layer]))
        assert np.mean(modules) >= MEASURED[activation]["module"][layer] - 0.05
        assert last >= MEASURED[activation]["last"][layer] - 1


def test_the_rule_beats_keeping_90_percent(searched):
    _, truth, _, _, _, searches = searched
    for layer, blocks in enumerate(truth.blocks):
        rule, ninety = [], []
        for c, s in enumerate(searches[layer]):
            n, block = len(s.order), np.flatnonzero(blocks == c)
            keep = n - np.flatnonzero(s.curve >= 0.9 * s.curve[0]).max()
            rule.append(jaccard(s.module, block))
            ninety.append(jaccard(s.order[n - max(keep, 1) :], block))
        assert np.mean(ninety) < 0.2 and np.mean(rule) > np.mean(ninety) + 0.15  # 90 % keeps most of the layer


def test_specialist_relays_its_own_class_most(searched):
    activation, truth, bits, x_in, x_out, _ = searched
    for layer, blocks in enumerate(truth.blocks):
        relay = np.array([set_relay_bits(bits[layer], blocks == k, x_in, x_out) for k in range(10)])  # k x class
        own = np.diag(relay)
        assert (own > (relay.sum(0) - own) / 9).sum() >= MEASURED[activation]["over_mean"][layer] - 1
        assert (relay.argmax(0) == np.arange(10)).sum() >= MEASURED[activation]["max"][layer] - 1


def test_greedy_where_no_state_mixes_both_indicators(toy):
    """A class never predicted: I(X_in; X_out | Y_0) is 0 for every Y_0, every move ties."""
    bits, x_in, _ = toy
    search = greedy_relay(bits, x_in[0], np.zeros(len(bits), dtype=np.int64))
    assert search.order.tolist() == list(range(bits.shape[1])) and not search.curve.any()
