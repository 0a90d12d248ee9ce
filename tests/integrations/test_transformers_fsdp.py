"""A patched tiny Llama under PyTorch's FSDP2 (``fully_shard``) on two gloo ranks: each rank's
loss and the averaged, resharded gradients equal the single-process stock model's."""

from __future__ import annotations

import os
import tempfile

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from .hf_models import VOCAB, build

hf = pytest.importorskip("losslab.integrations.transformers")
fsdp = pytest.importorskip("torch.distributed.fsdp")

WORLD = 2


def _halves():
    g = torch.Generator().manual_seed(7)
    ids = torch.randint(1, VOCAB, (2 * WORLD, 12), generator=g)
    labels = ids.clone()
    labels[0, :4] = -100
    return ids.chunk(WORLD), labels.chunk(WORLD)


def _worker(rank: int, init_file: str, out_dir: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank,
                            world_size=WORLD)
    try:
        from torch.distributed.device_mesh import init_device_mesh

        mesh = init_device_mesh("cpu", (WORLD,))
        model = hf.patch_causal_lm(build("llama").train())
        for layer in model.model.layers:
            fsdp.fully_shard(layer, mesh=mesh)
        fsdp.fully_shard(model, mesh=mesh)
        ids, labels = _halves()
        out = model(input_ids=ids[rank], labels=labels[rank])
        out.loss.backward()
        grads = {n: p.grad.full_tensor() for n, p in model.named_parameters()}
        torch.save({"loss": out.loss.detach(), "logits": out.logits, "grads": grads},
                   os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_fsdp2_patched_model_matches_the_single_process_stock_model():
    with tempfile.TemporaryDirectory() as tmp:
        mp.spawn(_worker, args=(os.path.join(tmp, "init"), tmp), nprocs=WORLD, join=True)
        results = [torch.load(os.path.join(tmp, f"rank{r}.pt")) for r in range(WORLD)]
    model = build("llama").train()
    ids, labels = _halves()
    losses, grads = [], []
    for r in range(WORLD):
        model.zero_grad(set_to_none=True)
        loss = model(input_ids=ids[r], labels=labels[r]).loss
        loss.backward()
        losses.append(loss.detach())
        grads.append({n: p.grad.clone() for n, p in model.named_parameters()})
    for r in range(WORLD):
        assert results[r]["logits"] is None
        torch.testing.assert_close(results[r]["loss"], losses[r], atol=1e-5, rtol=1e-6)
    # FSDP averages gradients over ranks: the mean of the per-rank gradients.
    for name in grads[0]:
        expected = sum(g[name] for g in grads) / WORLD
        for r in range(WORLD):
            torch.testing.assert_close(results[r]["grads"][name], expected, atol=1e-5,
                                       rtol=1e-5, msg=name)
