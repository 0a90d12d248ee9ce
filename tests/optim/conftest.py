"""Run these small-tensor tests on one intra-op thread: on a loaded machine OpenMP's thread
barriers make every tiny op wait for descheduled threads (a 50 ms L-BFGS fit took 4 s)."""

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
