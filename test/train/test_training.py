"""The training loop: it learns, it resumes exactly, its loss is the paper's."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from train_helpers import first_seed_without_void, losses, tiny_config

from icnet_train import checkpoint as ckpt
from icnet_train.cli import main
from icnet_train.data import SyntheticScenes
from icnet_train.distributed import setup
from icnet_train.evaluate import evaluate
from icnet_train.loss import CascadeLoss
from icnet_train.train import train


def test_a_few_dozen_steps_halve_the_loss_and_segment_the_frames(trained_run):
    """40 steps on 4 frames: the loss falls below half; on those frames mIoU > 0.12, pixel accuracy > 0.55.

    (Measured here: loss 7.1 -> 1.1, mIoU about 0.2 over the 18 classes present, accuracy 0.73.)
    """
    config, summary = trained_run
    history = losses(Path(config.output_dir))
    assert len(history) == 40
    assert sum(history[-5:]) / 5 < 0.5 * history[0]
    model = ckpt.model_from(ckpt.load(Path(config.output_dir) / "checkpoint.pth"))
    matrix = evaluate(model, SyntheticScenes(4, 65, 129, seed=0), config.preprocessing(), setup("cpu"))
    print(f"\ntraining frames after 40 steps: mIoU {matrix.mean_iou():.3f}, "
          f"pixel accuracy {matrix.pixel_accuracy():.3f}, loss {history[0]:.2f} -> {history[-1]:.2f}")
    assert matrix.mean_iou() > 0.12 and matrix.pixel_accuracy() > 0.55
    assert math.isfinite(summary["miou"]) and summary["iteration"] == 40  # validated at the end
    output = Path(config.output_dir)
    assert (output / "best.pth").is_file() and (output / "val_log.csv").is_file()
    assert list((output / "tensorboard").glob("events.out.tfevents.*"))


def test_resumed_run_repeats_the_uninterrupted_one_bitwise(tmp_path):
    """With accumulation, random resize, mirror and colour jitter: same losses and weights."""
    options = dict(iterations=6, lr=0.05, batch_size=4, accumulation=2, scale_range=(0.75, 1.5), mirror=True,
                   photometric=True, synthetic_size=(80, 160), checkpoint_interval=100, val_interval=0,
                   synthetic_val=1)
    whole = tiny_config(tmp_path / "whole", **options)
    train(whole)
    first = tiny_config(tmp_path / "split", stop_at=3, **options)
    train(first)
    saved = ckpt.load(tmp_path / "split" / "checkpoint.pth")
    assert saved["iteration"] == 3
    train(tiny_config(tmp_path / "split", resume=str(tmp_path / "split" / "checkpoint.pth"), **options))
    assert losses(tmp_path / "split") == losses(tmp_path / "whole")  # bitwise: the CSV holds repr()
    a = ckpt.load(tmp_path / "whole" / "checkpoint.pth")["model"]
    b = ckpt.load(tmp_path / "split" / "checkpoint.pth")["model"]
    assert all(torch.equal(a[name], b[name]) for name in a)
    with pytest.raises(ckpt.CheckpointError, match="other settings .lr"):
        train(tiny_config(tmp_path / "split", resume=str(tmp_path / "split" / "checkpoint.pth"),
                          **{**options, "lr": 0.1}))


def test_cascade_loss_is_the_weighted_cross_entropy_at_each_scale():
    torch.manual_seed(0)
    target = torch.randint(0, 19, (2, 33, 65))
    target[:, :5] = 255
    outputs = {"sub4": torch.randn(2, 19, 5, 9), "sub24": torch.randn(2, 19, 9, 17), "sub124": torch.randn(2, 19, 17, 33)}
    total, terms = CascadeLoss()(outputs, target)
    expected = 0
    for name, weight in (("sub4", 0.4), ("sub24", 0.4), ("sub124", 1.0)):
        size = outputs[name].shape[-2:]
        labels = F.interpolate(target[:, None].float(), size=size, mode="nearest")[:, 0].long()
        term = F.cross_entropy(outputs[name], labels, ignore_index=255)
        torch.testing.assert_close(terms[name], term)
        expected = expected + weight * term
    torch.testing.assert_close(total, expected)
    empty, _ = CascadeLoss({"sub4": 1.0})({"sub4": outputs["sub4"]}, torch.full((2, 33, 65), 255))
    assert empty.item() == 0.0  # nothing to learn from: zero, not NaN
    with pytest.raises(ValueError, match="no loss weight"):
        CascadeLoss({"sub4": 1.0})(outputs, target)


def test_cli_reports_bad_input_without_a_traceback(tmp_path, capsys):
    assert main(["train", "--dataset", "cityscapes", "--data-root", str(tmp_path)]) == 2
    assert "Cityscapes folder missing" in capsys.readouterr().err
    (tmp_path / "run.yaml").write_text("batch_size: 16\nlearning_rate: 0.1\n")
    assert main(["train", "--config", str(tmp_path / "run.yaml")]) == 2
    assert "unknown configuration keys: learning_rate" in capsys.readouterr().err
    assert main(["train", "--batch-size", "6", "--accumulation", "4"]) == 2
    assert "not divisible" in capsys.readouterr().err
    assert main(["evaluate", "--weights", str(tmp_path / "none.safetensors")]) == 2
    assert "weight file not found" in capsys.readouterr().err
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    assert main(["export", "--checkpoint", str(tmp_path / "junk.pth"), "--output", str(tmp_path / "w.safetensors")]) == 2
    assert "not a readable checkpoint" in capsys.readouterr().err


class _Payload:
    """Unpickling this would create ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return open, (str(self.marker), "w")


def test_a_checkpoint_with_pickled_code_is_refused_in_one_line(tmp_path, capsys):
    """The checkpoint loader says what was found and what to use, not torch's eight lines."""
    marker = tmp_path / "marker"
    checkpoint = tmp_path / "crafted.pth"
    torch.save({"format": ckpt.FORMAT, "model": {}, "note": _Payload(marker)}, checkpoint)
    assert main(["export", "--checkpoint", str(checkpoint), "--output", str(tmp_path / "w.safetensors")]) == 2
    error = capsys.readouterr().err
    assert not marker.exists()
    assert error.count("\n") == 1, error
    assert error.startswith(f"icnet-train: error: {checkpoint} refused (it pickles unsupported GLOBAL io.open); "
                            "nothing in it was run"), error
    assert "Use a .safetensors file instead" in error and "will likely succeed" not in error


def test_accumulation_help_says_what_matches_one_batch_and_the_runs_agree(tmp_path, capsys, trained_run):
    """--accumulation's help: not the same with batch norm in training mode, exact with --freeze-bn.

    One optimizer step of batch 2, whole or as 2 micro-batches of 1, from the trained tiny
    network (its batch-norm statistics are learnt), on frames without void pixels (so both
    micro-batch losses are means over as many pixels). The weights after the step are
    compared, not only the logged loss (which is computed before any step).
    """
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert ("micro-batches per iteration, for less memory: the same samples and steps as one batch, but not the "
            "same gradient with batch norm in training mode (it normalises each micro-batch alone)") in help_text
    assert "use --freeze-bn for an exact match (default: 1)" in help_text
    init = Path(trained_run[0].output_dir) / "checkpoint.pth"
    before = ckpt.load(init)["model"]
    options = dict(iterations=1, batch_size=2, synthetic_train=2, synthetic_seed=first_seed_without_void(2),
                   init=str(init))
    first, steps = {}, {}
    for freeze_bn in (False, True):
        for accumulation in (1, 2):
            output = tmp_path / f"freeze_{freeze_bn}_accumulation_{accumulation}"
            train(tiny_config(output, accumulation=accumulation, freeze_bn=freeze_bn, **options))
            first[freeze_bn, accumulation] = losses(output)[0]
            after = ckpt.load(output / "checkpoint.pth")["model"]
            steps[freeze_bn, accumulation] = torch.cat([(after[name] - before[name]).flatten().double()
                                                        for name in sorted(after) if after[name].is_floating_point()])
    print(f"\niteration-1 loss, batch 2 / 2 micro-batches of 1: {first[False, 1]:.4f} / {first[False, 2]:.4f}; "
          f"with --freeze-bn {first[True, 1]:.4f} / {first[True, 2]:.4f}")
    assert abs(first[False, 1] - first[False, 2]) > 1e-3 * first[False, 1]
    assert first[True, 1] == pytest.approx(first[True, 2], rel=1e-5)
    whole, accumulated = steps[True, 1], steps[True, 2]
    difference = ((accumulated - whole).norm() / whole.norm()).item()
    print(f"with --freeze-bn, the step of 2 micro-batches against one batch: relative difference {difference:.1e}")
    assert whole.abs().max() > 0   # the step moved the weights
    # The same step: the accumulated gradient is the mean of the micro-batches' gradients.
    assert difference < 1e-4, "accumulated step differs from the whole batch's"
