"""The explorer on a model ingested from files (its `source` stored): the live intervention reruns
the closing on the reloaded model and data, the top samples are drawn from the data, and a
community of dead neurons says so instead of naming a class, as a dead neuron has no relay score."""

import pytest
import torch
from pages import open_page

from neurocypher.ingest import analyze, write
from neurocypher.ingest.data import load_data
from neurocypher.ingest.demo_models import mlp
from neurocypher.ingest.modelfile import source_of
from neurocypher.queries import connect

DEAD = 10  # units of fc1 that never fire


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    """A demo MLP trained briefly on digits, DEAD of its fc1 units killed (weights 0, bias -1),
    saved as weights and ingested with its source as `app-live` (innersight and relay); its analysis."""
    data = load_data("sklearn:digits")
    torch.manual_seed(0)
    model = mlp()
    optimiser = torch.optim.Adam(model.parameters(), lr=0.01)
    X, y = torch.from_numpy(data.X), torch.from_numpy(data.y)
    for _ in range(150):
        optimiser.zero_grad()
        torch.nn.functional.cross_entropy(model(X), y).backward()
        optimiser.step()
    with torch.no_grad():
        model.fc1.weight[:DEAD] = 0.0
        model.fc1.bias[:DEAD] = -1.0
    weights = tmp_path_factory.mktemp("live") / "mlp.pt"
    torch.save(model.state_dict(), weights)
    analysis = analyze(
        model, data.X, data.y, name="app-live", methods=("innersight", "relay"), deletion=False, image_shape=(8, 8)
    )
    analysis.source = source_of("ingest/demo_models.py:mlp", weights, "sklearn:digits")
    with connect() as store:
        write(store, analysis, replace=True)
        yield analysis
        store.drop("app-live")


def stored_communities(store) -> list[dict]:
    return store.read(
        "MATCH (n:Neuron)-[mo:MEMBER_OF]->(c:Community) WHERE mo.primary = 1 "
        "RETURN c.uid AS uid, c.acc_drop AS drop, c.class_acc_drop AS per_class, collect(n.constant) AS constant",
        model="app-live",
    )


def community_page(uid: str):
    """The community graph page of community `uid` of app-live (of its method)."""
    return open_page("communities", model="app-live", method=uid.split("/")[-3], community=uid)


def test_closing_a_community_live_gives_the_stored_change(store, live):
    key = max((c for c in stored_communities(store) if "/L1/" in c["uid"]), key=lambda c: c["drop"])
    app = community_page(key["uid"])
    app.button(key="close_live").click().run()
    assert not app.exception and not app.error
    change = app.dataframe[-1].value  # the last table: the closing next to the stored one
    assert list(change["drop now"]) == pytest.approx(key["per_class"], abs=1e-9)
    assert list(change["drop stored"]) == pytest.approx(key["per_class"], abs=1e-12)
    assert max(change["drop now"]) > 0.01, "the closing changes something"


def test_a_community_of_dead_neurons_says_it_is_inactive(store, live):
    dead = [c for c in stored_communities(store) if all(c["constant"])]
    assert dead, f"the {DEAD} dead units of fc1 form a community of their own"
    app = community_page(dead[0]["uid"])
    assert "inactive: its neurons are constant" in app.subheader[0].value
    live_ones = [c["uid"] for c in stored_communities(store) if not all(c["constant"]) and "/L1/" in c["uid"]]
    app = community_page(live_ones[0])
    assert "inactive" not in app.subheader[0].value


def test_a_constant_neuron_has_no_relay_score(live):
    app = open_page("neuron", model="app-live", uid="app-live/L1/0")  # one of the dead units
    assert app.metric[4].value == "yes" and "relay score" not in app.dataframe[0].value.columns
    assert any("A constant neuron carries no information" in c.value for c in app.caption)
    app = open_page("neuron", model="app-live", uid=f"app-live/L1/{DEAD}")  # a live one
    assert app.metric[4].value == "no" and "relay score" in app.dataframe[0].value.columns


def test_image_communities_are_pictures(store, live):
    inputs = next(c["uid"] for c in stored_communities(store) if "/L0/" in c["uid"])
    app = community_page(inputs)
    captions = [image.proto.imgs[0].caption for image in app.get("image")]
    assert captions == [
        "prototype: the mean of its top samples",
        "its member pixels (white)",
        "its top samples (strongest first)",
    ]
