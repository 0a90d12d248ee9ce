"""A dispatch mode that records the largest tensor any operation returns: the fused tests use
it to check that no (N, V) logits tensor is ever allocated."""

import weakref

import torch
from torch.utils._python_dispatch import TorchDispatchMode


class LargestAllocation(TorchDispatchMode):
    """``with LargestAllocation() as mode: ...`` then ``mode.largest`` is the most elements
    of a tensor produced inside the block (forward and backward alike)."""

    def __init__(self):
        super().__init__()
        self.largest = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for x in out if isinstance(out, (tuple, list)) else [out]:
            if isinstance(x, torch.Tensor):
                self.largest = max(self.largest, x.numel())
        return out


class PeakLiveBytes(TorchDispatchMode):
    """``with PeakLiveBytes() as mode: ...`` then ``mode.peak`` is the most bytes held at once
    by the storages that operations inside the block allocated (a storage counts from the
    operation that returned it until its last tensor is freed; tensors from before the block,
    and outputs written into them, do not count). The memory-budget tests subtract the
    gradients the call returns, as the benchmarks do."""

    def __init__(self, *existing: torch.Tensor):
        super().__init__()
        self.known = {t.untyped_storage().data_ptr() for t in existing if t is not None}
        self.live: dict[int, int] = {}
        self.current = 0
        self.peak = 0

    def _free(self, key: int) -> None:
        self.current -= self.live.pop(key, 0)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for x in out if isinstance(out, (tuple, list)) else [out]:
            if not isinstance(x, torch.Tensor):
                continue
            storage = x.untyped_storage()
            key, size = storage.data_ptr(), storage.nbytes()
            if size == 0 or key in self.known or key in self.live:
                continue
            self.live[key] = size
            self.current += size
            self.peak = max(self.peak, self.current)
            weakref.finalize(x, self._free, key)
        return out
