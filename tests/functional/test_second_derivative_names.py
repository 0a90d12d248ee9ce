"""A refused second derivative names the public loss function (docs/conventions.md).

Regression: the hand-written backwards used to read ``getattr(ctx, "name")``, which is the
autograd node's built-in ``name()`` method, so the message printed
``<built-in method name of _SoftmaxRowStatsBackward object at 0x…>``.
"""

from __future__ import annotations

import pytest
import torch

import losslab.functional as LF

CASES = [
    ("generalized_cross_entropy", {}),
    ("comp_sum", {}),
    ("spherical_z_loss", {}),
    ("focal_loss", {}),
    ("mean_absolute_error", {}),
    ("ldr_kl", {}),
    ("reverse_cross_entropy", {}),
    ("normalized_cross_entropy", {}),
]


@pytest.mark.parametrize(("name", "kwargs"), CASES, ids=[c[0] for c in CASES])
def test_second_derivative_refusal_names_the_loss(name: str, kwargs: dict[str, object]) -> None:
    torch.manual_seed(0)
    x = torch.randn(4, 5, dtype=torch.float64, requires_grad=True)
    y = torch.tensor([0, 1, 2, 3])
    loss = getattr(LF, name)(x, y, **kwargs)
    # The refusal comes as soon as the backward runs with create_graph=True (the first step
    # of any second derivative), before a wrong graph could be built.
    with pytest.raises(NotImplementedError) as info:
        (g,) = torch.autograd.grad(loss, x, create_graph=True)
        torch.autograd.grad(g.sum(), x)
    message = str(info.value)
    assert message.startswith(f"losslab: {name} has a hand-written first-order backward")
    assert "built-in method" not in message
