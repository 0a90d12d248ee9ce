"""A dispatch mode that records the largest tensor any operation returns: the fused tests use
it to check that no (N, V) logits tensor is ever allocated."""

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
