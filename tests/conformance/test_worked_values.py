"""Every registered loss of kind "logits" or "value" has a hand-worked value, and its
spec-stated identities hold (issue 2 §5). The table lives in ``worked_values.py``; a newly
registered loss fails ``test_every_registered_loss_has_a_worked_example`` until it has an entry."""

from __future__ import annotations

from typing import Any

import pytest
import torch

import losslab

from .worked_values import EXAMPLES, IDENTITIES, Call, Example, Identity

KINDS = ("logits", "value")
INFOS = {i.name: i for kind in KINDS for i in losslab.list_losses(kind=kind)}
ATOL = 1e-6


def _is_int_list(value: Any) -> bool:
    if isinstance(value, (list, tuple)):
        return all(_is_int_list(v) for v in value)
    return isinstance(value, int) and not isinstance(value, bool)


def _tensor(name: str, value: Any) -> torch.Tensor:
    if name in ("target", "sample_ids") and _is_int_list(value):
        return torch.tensor(value, dtype=torch.long)
    return torch.tensor(value, dtype=torch.float64)


def _run(loss: str, input: Any, target: Any, hp: dict[str, Any], tensors: dict[str, Any], reduction: str):
    kwargs = {k: _tensor(k, v) for k, v in tensors.items()}
    hp = {k: _tensor(k, v) if isinstance(v, list) else v for k, v in hp.items()}
    return INFOS[loss].function(
        _tensor("input", input), _tensor("target", target), reduction=reduction, **kwargs, **hp
    )


# --------------------------------------------------------------------------- coverage


@pytest.mark.parametrize("name", sorted(INFOS))
def test_every_registered_loss_has_a_worked_example(name):
    assert any(ex.loss == name for ex in EXAMPLES), (
        f"registered loss {name!r} (kind {INFOS[name].kind!r}) has no worked value: add an Example "
        f"to tests/conformance/worked_values.py with a hand-computed or spec value and its source"
    )


def test_table_names_only_registered_losses():
    named = {ex.loss for ex in EXAMPLES}
    for ident in IDENTITIES:
        named |= {ident.left.loss} | {c.loss for _, c in ident.right}
    assert named <= set(INFOS), f"unknown losses in worked_values.py: {sorted(named - set(INFOS))}"


def test_every_example_names_its_source():
    for ex in EXAMPLES:
        assert ex.source.strip(), ex


# --------------------------------------------------------------------------- worked values


def _example_params() -> list[Any]:
    params = []
    seen: dict[str, int] = {}
    for ex in EXAMPLES:
        seen[ex.loss] = seen.get(ex.loss, 0) + 1
        marks = [pytest.mark.xfail(strict=True, reason=ex.xfail)] if ex.xfail else []
        params.append(pytest.param(ex, id=f"{ex.loss}-{seen[ex.loss]}", marks=marks))
    return params


@pytest.mark.parametrize("ex", _example_params())
def test_worked_value(ex: Example):
    out = _run(ex.loss, ex.input, ex.target, ex.hp, ex.tensors, ex.reduction)
    assert out.dtype == torch.float64
    assert abs(out.item() - ex.expected) <= ATOL, (
        f"{ex.loss} {ex.hp}: got {out.item()!r}, expected {ex.expected!r} ({ex.source})"
    )


# --------------------------------------------------------------------------- identities


def _call(c: Call, ident: Identity) -> torch.Tensor:
    input = ident.input if c.input is None else c.input
    target = ident.target if c.target is None else c.target
    return _run(c.loss, input, target, c.hp, c.tensors, "none")


def _identity_ids() -> list[str]:
    seen: dict[str, int] = {}
    ids = []
    for ident in IDENTITIES:
        seen[ident.left.loss] = seen.get(ident.left.loss, 0) + 1
        ids.append(f"{ident.left.loss}-{seen[ident.left.loss]}")
    return ids


@pytest.mark.parametrize("ident", IDENTITIES, ids=_identity_ids())
def test_identity(ident: Identity):
    left = _call(ident.left, ident)
    right = sum(coef * _call(c, ident) for coef, c in ident.right) + ident.offset
    assert left.shape == right.shape
    torch.testing.assert_close(
        left, right, rtol=0.0, atol=ATOL, msg=lambda m: f"{ident.name} ({ident.source})\n{m}"
    )
