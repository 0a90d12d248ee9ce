"""A two-rank gloo worker for the distributed NT-Xent test (spawned by torch.multiprocessing)."""

import torch
import torch.distributed as dist

from losslab.functional.contrastive import nt_xent_loss


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
        torch.save({"loss": loss.detach(), "grad": local.grad}, f"{out_dir}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()
