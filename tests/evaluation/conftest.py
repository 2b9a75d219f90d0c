"""Fixtures of the evaluation tests."""

import pytest
import torch


@pytest.fixture
def one_thread():
    """Many tiny tensor ops per step (AIS, refined IS): a second thread only adds contention."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)
