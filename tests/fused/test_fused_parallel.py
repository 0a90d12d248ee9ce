"""Vocabulary-parallel linear_cross_entropy on 2 and 3 real gloo ranks (torch.multiprocessing):
loss and gradients equal the single-process result on the whole weight."""

import os
import tempfile

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

import losslab

V, D = 23, 5
CASES = [
    dict(reduction="mean"),
    dict(reduction="sum", label_smoothing=0.2, z_loss=1e-2, softcap=3.0),
    dict(reduction="none", label_smoothing=0.1),
    dict(reduction="mean", shift=True, filter_eps=None),
]


def _inputs():
    g = torch.Generator().manual_seed(0)
    h = torch.randn(3, 7, D, generator=g, dtype=torch.float64)
    w = torch.randn(V, D, generator=g, dtype=torch.float64)
    b = torch.randn(V, generator=g, dtype=torch.float64)
    t = torch.randint(0, V, (3, 7), generator=g)
    t[1, 2:5] = -100
    return h, w, b, t


def _bounds(world):
    sizes = [V // world + (r < V % world) for r in range(world)]
    starts = [sum(sizes[:r]) for r in range(world)]
    return list(zip(starts, [s + n for s, n in zip(starts, sizes, strict=True)], strict=True))


def _run(h, w, b, t, case, group=None):
    leaves = [x.clone().requires_grad_() for x in (h, w, b)]
    loss = losslab.linear_cross_entropy(leaves[0], leaves[1], t, bias=leaves[2],
                                        process_group=group, chunk_size=4, **case)
    up = torch.linspace(0.5, 1.5, loss.numel(), dtype=loss.dtype).reshape(loss.shape)
    (loss * up).sum().backward()
    return [loss.detach()] + [x.grad for x in leaves]


def _worker(rank, world, init_file, out_dir):
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    h, w, b, t = _inputs()
    lo, hi = _bounds(world)[rank]
    results = [_run(h, w[lo:hi], b[lo:hi], t, case, dist.group.WORLD) for case in CASES]
    # Shards of different D, or different token counts, are rejected on every rank.
    errors = []
    last = rank == world - 1
    for bad_h, bad_w, bad_t in [(h[..., : D - 1] if last else h, w[lo:hi, : D - 1] if last else w[lo:hi], t),
                                (h[:2] if last else h, w[lo:hi], t[:2] if last else t)]:
        try:
            losslab.linear_cross_entropy(bad_h, bad_w, bad_t, process_group=dist.group.WORLD)
            errors.append("")
        except ValueError as e:
            errors.append(str(e))
    torch.save({"results": results, "errors": errors}, os.path.join(out_dir, f"{rank}.pt"))
    dist.destroy_process_group()


@pytest.mark.slow
@pytest.mark.parametrize("world", [2, 3])
def test_vocab_parallel_equals_single_process(world):
    h, w, b, t = _inputs()
    expected = [_run(h, w, b, t, case) for case in CASES]
    with tempfile.TemporaryDirectory() as tmp:
        mp.spawn(_worker, args=(world, os.path.join(tmp, "init"), tmp), nprocs=world, join=True)
        outputs = [torch.load(os.path.join(tmp, f"{r}.pt")) for r in range(world)]
    for rank, (lo, hi) in enumerate(_bounds(world)):
        out = outputs[rank]
        assert out["errors"][0].startswith("linear_cross_entropy: weight shards disagree on the hidden size")
        assert out["errors"][1].startswith("linear_cross_entropy: ranks disagree on the number of tokens")
        for case, got, exp in zip(CASES, out["results"], expected, strict=True):
            loss, dh, dw, db = got
            torch.testing.assert_close(loss, exp[0], rtol=1e-10, atol=1e-12, msg=str(case))
            torch.testing.assert_close(dh, exp[1], rtol=1e-10, atol=1e-12, msg=str(case))
            torch.testing.assert_close(dw, exp[2][lo:hi], rtol=1e-10, atol=1e-12, msg=str(case))
            torch.testing.assert_close(db, exp[3][lo:hi], rtol=1e-10, atol=1e-12, msg=str(case))
