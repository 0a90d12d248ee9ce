"""A two-rank gloo worker for the distributed NT-Xent test (spawned by torch.multiprocessing)."""

import torch
import torch.distributed as dist

from losslab.functional.embedding.contrastive import nt_xent_loss
from losslab.nn import NTXentLoss


def global_batch():
    g = torch.Generator().manual_seed(11)
    x = torch.randn(12, 5, generator=g, dtype=torch.float64)
    y = torch.randint(0, 4, (12,), generator=g)
    return x, y


def worker(rank, world, init_file, out_dir, temperature):
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        x, y = global_batch()
        rows = x.shape[0] // world
        local = x[rank * rows : (rank + 1) * rows].clone().requires_grad_()
        loss = nt_xent_loss(
            local, y[rank * rows : (rank + 1) * rows], temperature=temperature, gather_distributed=True
        )
        loss.backward()
        lab = y[rank * rows : (rank + 1) * rows]
        other = {
            red: nt_xent_loss(local.detach(), lab, temperature=temperature, gather_distributed=True,
                              reduction=red)
            for red in ("sum", "none")
        }
        # the module, over an explicit process group holding every rank
        group = dist.new_group(list(range(world)))
        module = NTXentLoss(temperature=temperature, gather_distributed=True, process_group=group)
        torch.save({"loss": loss.detach(), "grad": local.grad, **other,
                    "module": module(local.detach(), lab)}, f"{out_dir}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()
