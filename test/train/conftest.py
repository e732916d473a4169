"""Fixtures of the training tests: one small training run shared by several tests.

Everything runs single-threaded: on a small shared CPU, torch's parallel regions with two
threads are many times slower than one.
"""

from __future__ import annotations

import pytest
import torch
from train_helpers import tiny_config

from icnet_train.config import TrainConfig

torch.set_num_threads(1)


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory) -> tuple[TrainConfig, dict]:
    """40 iterations (lr 0.05) of the tiny network on its four frames, with TensorBoard on."""
    from icnet_train.train import train

    config = tiny_config(tmp_path_factory.mktemp("trained"), iterations=40, lr=0.05, checkpoint_interval=40,
                         tensorboard=True)
    summary = train(config)
    return config, summary
