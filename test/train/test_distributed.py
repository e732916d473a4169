"""Two torchrun processes on the CPU (gloo) against one process with the whole batch.

DistributedDataParallel averages the gradients of the processes. That equals the
gradient of one process on the whole batch only where nothing else couples the samples:
- batch norm in training mode normalises each process's half batch with its own
  statistics, which legitimately differs from whole-batch statistics (SyncBatchNorm would
  fix it, but PyTorch implements it for GPUs only). So the check fine-tunes a trained
  network with frozen batch norm (``--freeze-bn``: its stored statistics, as when
  fine-tuning with small batches);
- each process's loss is the mean over its own valid pixels, so the average of the two
  means is the whole-batch mean only when both halves hold as many valid pixels. The
  check uses whole frames without void pixels (no crop padding, no ego-vehicle bonnet).
With one SGD step at lr 1 and no momentum or weight decay, each weight moves by exactly
its gradient, which the two runs' checkpoints then give.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from train_helpers import TINY, first_seed_without_void, losses, tiny_config

from icnet_ros.synthetic.street_scenes import generate_scene
from icnet_ros.weights.labels import CITYSCAPES
from icnet_train import checkpoint as ckpt
from icnet_train.train import build_model, train


def test_two_gloo_processes_average_the_gradients_of_one_process_on_the_whole_batch(tmp_path, trained_run):
    seed = first_seed_without_void(4)
    assert all((generate_scene(seed + i, 65, 129)[1] != 255).all() for i in range(4))
    trained = Path(trained_run[0].output_dir) / "checkpoint.pth"
    options = dict(iterations=1, lr=1.0, momentum=0.0, weight_decay=0.0, freeze_bn=True, synthetic_seed=seed,
                   init=str(trained))
    config_file = tmp_path / "run.yaml"
    config_file.write_text(yaml.safe_dump({k: list(v) if isinstance(v, tuple) else v
                                           for k, v in {**TINY, **options}.items()}))
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
               "-m", "icnet_train", "train", "--config", str(config_file), "--output-dir", str(tmp_path / "two")]
    result = subprocess.run(command, env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True,
                            text=True, timeout=240)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    assert "2 process(es) on cpu" in result.stdout

    single = tiny_config(tmp_path / "one", **options)
    train(single)
    initial = build_model(single, CITYSCAPES)[0].state_dict()
    one = ckpt.load(tmp_path / "one" / "checkpoint.pth")["model"]
    two = ckpt.load(tmp_path / "two" / "checkpoint.pth")["model"]
    names = [name for name, _ in build_model(single, CITYSCAPES)[0].named_parameters()]
    moved = 0
    for name in names:
        gradient_one, gradient_two = initial[name] - one[name], initial[name] - two[name]
        scale = float(gradient_one.abs().max())
        assert float((gradient_two - gradient_one).abs().max()) <= 1e-4 * scale + 1e-7, name
        moved += scale > 1e-6
    assert moved > 0.9 * len(names)
    for name in initial:
        if "running_" in name:  # frozen statistics
            assert torch.equal(one[name], initial[name]) and torch.equal(two[name], initial[name])
    # The same loss, summed in another order across the two processes: float32 rounding apart.
    assert losses(tmp_path / "two")[0] == pytest.approx(losses(tmp_path / "one")[0], rel=1e-6)
