"""The input checks the logit families share (functional/_core): teacher logits aligned with
the kept rows, binary logits with a same-shaped target, values in [0, 1]. Each error path is
checked for its message (function, argument, what was received, what was expected), directly
and through every loss that uses the check."""

import re

import pytest
import torch

import losslab.functional as LF
from losslab.functional._core.binary_logits import check_binary_logits
from losslab.functional._core.row_aligned_inputs import teacher_logit_rows
from losslab.functional._core.unit_interval import check_unit_interval

torch.set_num_threads(1)

TEACHER_LOSSES = ("kd", "pld", "sce_consistency", "cbc")
BINARY_LOSSES = ("binary_dice", "binary_tversky", "binary_anyloss")


def _batch(n=5, c=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (
        torch.randn(n, c, generator=g, dtype=torch.float64),
        torch.randn(n, c, generator=g, dtype=torch.float64),
        torch.randint(0, c, (n,), generator=g),
    )


# ----------------------------------------------------------------------------- teacher rows


def test_teacher_rows_are_detached_kept_rows_in_the_student_dtype():
    z, t, y = _batch()
    t.requires_grad_(True)
    y[1] = -100
    kept = z[y != -100].to(torch.float32)
    rows = teacher_logit_rows("kd", t, z, y, -100, kept)
    assert rows.dtype == torch.float32 and not rows.requires_grad
    torch.testing.assert_close(rows, t.detach()[y != -100].to(torch.float32))


def test_teacher_rows_follow_the_spatial_layout():
    g = torch.Generator().manual_seed(1)
    z = torch.randn(2, 3, 4, generator=g)  # (N, C, d1)
    t = torch.randn(2, 3, 4, generator=g)
    y = torch.randint(0, 3, (2, 4), generator=g)
    flat = z.movedim(1, -1).reshape(-1, 3)
    rows = teacher_logit_rows("kd", t, z, y, -100, flat)
    torch.testing.assert_close(rows, t.movedim(1, -1).reshape(-1, 3))


@pytest.mark.parametrize(
    ("teacher", "error", "message"),
    [
        ([[1.0]], TypeError, "kd: teacher_logits must be a torch.Tensor, got list"),
        (
            torch.zeros(5, 4),
            ValueError,
            "kd: teacher_logits must have shape (5, 3) aligned with input of shape (5, 3), "
            "got (5, 4)",
        ),
        (
            torch.zeros(4, 3),
            ValueError,
            "kd: teacher_logits must have shape (5, 3) aligned with input of shape (5, 3), "
            "got (4, 3)",
        ),
        (
            torch.zeros(5, 3, dtype=torch.long),
            TypeError,
            "kd: teacher_logits must be a floating-point tensor, got dtype torch.int64",
        ),
    ],
)
def test_teacher_rows_errors_name_function_argument_and_shapes(teacher, error, message):
    z, _, y = _batch()
    with pytest.raises(error, match=re.escape(message)):
        teacher_logit_rows("kd", teacher, z, y, -100, z)


@pytest.mark.parametrize("name", TEACHER_LOSSES)
def test_every_teacher_loss_reports_a_misshaped_teacher_under_its_own_name(name):
    z, t, y = _batch()
    fn = getattr(LF, name)
    expected = f"{name}: teacher_logits must have shape (5, 3) aligned with input of shape (5, 3), got (5, 2)"
    with pytest.raises(ValueError, match=re.escape(expected)):
        fn(z, y, teacher_logits=t[:, :2])
    with pytest.raises(TypeError, match=re.escape(f"{name}: teacher_logits must be a floating-point")):
        fn(z, y, teacher_logits=t.long())
    with pytest.raises(TypeError, match=re.escape(f"{name}: teacher_logits must be a torch.Tensor")):
        fn(z, y, teacher_logits=t.tolist())


@pytest.mark.parametrize("name", TEACHER_LOSSES)
def test_every_teacher_loss_gives_the_teacher_no_gradient(name):
    z, t, y = _batch(seed=3)
    z.requires_grad_(True)
    t.requires_grad_(True)
    getattr(LF, name)(z, y, teacher_logits=t).backward()
    assert t.grad is None
    assert z.grad is not None


# ----------------------------------------------------------------------------- binary logits


def test_binary_logits_accept_any_shape_and_floating_dtype_with_a_same_shaped_target():
    for shape in [(), (4,), (4, 2)]:
        for dtype in (torch.float16, torch.bfloat16, torch.float64):
            check_binary_logits("binary_dice", torch.zeros(shape, dtype=dtype), torch.ones(shape))


@pytest.mark.parametrize(
    ("input", "target", "error", "message"),
    [
        ("a", torch.ones(3), TypeError, "f: input must be a torch.Tensor, got str"),
        (torch.ones(3), None, TypeError, "f: target must be a torch.Tensor, got NoneType"),
        (
            torch.ones(3, dtype=torch.long),
            torch.ones(3),
            TypeError,
            "f: input must be a floating-point tensor (logits), got torch.int64",
        ),
        (
            torch.ones(3),
            torch.ones(3, 1),
            ValueError,
            "f: target must have the input's shape (3,), got (3, 1)",
        ),
    ],
)
def test_binary_logits_errors(input, target, error, message):
    with pytest.raises(error, match=re.escape(message)):
        check_binary_logits("f", input, target)


@pytest.mark.parametrize("name", BINARY_LOSSES)
def test_every_binary_loss_checks_its_inputs_under_its_own_name(name):
    fn = getattr(LF, name)
    x = torch.randn(6)
    with pytest.raises(ValueError, match=re.escape(f"{name}: target must have the input's shape (6,), got (5,)")):
        fn(x, torch.ones(5))
    with pytest.raises(TypeError, match=re.escape(f"{name}: input must be a floating-point tensor (logits)")):
        fn(torch.ones(6, dtype=torch.long), torch.ones(6))
    with pytest.raises(TypeError, match=re.escape(f"{name}: target must be a torch.Tensor, got list")):
        fn(x, [1.0] * 6)


# ----------------------------------------------------------------------------- unit interval


@pytest.mark.parametrize(
    "values",
    [torch.tensor([0.0, 0.25, 1.0]), torch.empty(0), torch.zeros(2, 3, device="meta") + 5],
)
def test_unit_interval_accepts_probabilities_empty_and_meta(values):
    check_unit_interval("f", "p", values, requirement="be probabilities in [0, 1]")


@pytest.mark.parametrize(
    ("values", "got"),
    [
        (torch.tensor([0.5, 1.5, -0.25]), "got range [-0.25, 1.5]"),
        (torch.tensor([0.5, float("nan")]), "got NaN"),
        (torch.tensor([2.0, float("nan")]), "got NaN"),  # NaN is named before the range
        (torch.tensor([float("inf")]), "got range [inf, inf]"),
    ],
)
def test_unit_interval_errors_report_nan_or_the_range(values, got):
    with pytest.raises(ValueError, match=re.escape(f"f: p must be probabilities in [0, 1], {got}")):
        check_unit_interval("f", "p", values, requirement="be probabilities in [0, 1]")


def test_aspect_targets_and_binary_targets_use_the_unit_interval_check():
    z, t, y = _batch()
    with pytest.raises(ValueError, match=re.escape(
        "multi_aspect_kd: aspect_targets must be probabilities in [0, 1], got range [0.5, 3.0]"
    )):
        LF.multi_aspect_kd(z, y, aspect_logits=t[:, :2], aspect_targets=torch.tensor([[0.5, 3.0]] * 5))
    with pytest.raises(ValueError, match=re.escape(
        "binary_tversky: target values must lie in [0, 1] (or equal ignore_index), got NaN"
    )):
        LF.binary_tversky(torch.randn(3), torch.tensor([0.0, float("nan"), 1.0]))
    # Ignored positions are not checked: -100 is outside [0, 1] but marks a dropped element.
    LF.binary_dice(torch.randn(3), torch.tensor([0.0, -100.0, 1.0]))
