"""Fixtures shared by several test files."""
from pathlib import Path

import pytest
import torch

from asteroid_avspeech import LookingToListen


@pytest.fixture(scope="session")
def package(tmp_path_factory) -> Path:
    """A small random-weight LookingToListen saved as a model package (``serialize()``)."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("model") / "tiny.pth"
    torch.save(LookingToListen(n_src=2, preset="small", lstm_hidden=32, fc_dims=[32]).serialize(), path)
    return path
