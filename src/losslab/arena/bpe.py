"""A byte-level BPE tokenizer trained locally with ``tokenizers`` (nothing is downloaded).

The arena's two Shakespeare settings (the language model in :mod:`.lm` and the genre
classification in :mod:`.text_task`) train their tokenizers here. Training is deterministic
for given lines and vocabulary size: separate processes produce the same vocabulary and merges
(checked on the text task's corpus by its tests and by hashing ``Tokenizer.to_str()`` in
three fresh processes), so every worker of a sweep tokenizes alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tokenizers import Tokenizer


def train_byte_level_bpe(lines: Sequence[str], vocab_size: int) -> Tokenizer:
    """A byte-level BPE tokenizer (GPT-2 style: every byte is a base symbol, so any text
    encodes) with ``vocab_size`` entries, trained on ``lines``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    if isinstance(vocab_size, bool) or not isinstance(vocab_size, int) or vocab_size < 257:
        raise ValueError(
            f"train_byte_level_bpe: vocab_size must be an integer >= 257 (the 256 byte symbols "
            f"and at least one merge), got {vocab_size!r}"
        )
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(lines, trainer=trainer)
    return tok
