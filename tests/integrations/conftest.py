import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    # transformers models on a busy 2-core machine run far slower with 2 threads.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
