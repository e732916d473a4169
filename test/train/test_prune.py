"""Progressive L1 filter pruning: physically smaller, consistent, loadable."""

from __future__ import annotations

from pathlib import Path

import torch

from icnet_ros.model import icnet
from icnet_ros.weights.weight_file import load_model
from icnet_train import checkpoint as ckpt
from icnet_train.cli import main
from icnet_train.prune import channel_groups, filter_l1, prune


def parameters(model) -> int:
    return sum(p.numel() for p in model.parameters())


def test_schedule_gives_the_widths_and_parameter_counts_of_narrower_networks():
    """1.0 -> 0.75 -> 0.5 of a width-0.25 ICNet = ICNet built at width 0.1875, then 0.125.

    Every official channel count is a multiple of 32, so the kept counts are exact and the
    expected parameter counts come from the model builder: 1,686,873 -> 952,641 -> 426,761.
    """
    torch.manual_seed(0)
    model = icnet(width=0.25, aux_classifiers=True)
    reference = model.layer_channels()
    three_quarters = prune(model, 0.75, reference)
    half = prune(three_quarters, 0.5, reference)
    for pruned, width in ((three_quarters, 0.1875), (half, 0.125)):
        expected = icnet(width=width, aux_classifiers=True)
        assert pruned.layer_channels() == expected.layer_channels()
        assert parameters(pruned) == parameters(expected)
    assert (parameters(model), parameters(three_quarters), parameters(half)) == (1_686_873, 952_641, 426_761)
    outputs = half.train()(torch.randn(2, 3, 65, 129))
    assert {k: tuple(v.shape) for k, v in outputs.items()} == {
        "sub4": (2, 19, 5, 9), "sub24": (2, 19, 9, 17), "sub124": (2, 19, 17, 33)}
    assert half.eval()(torch.randn(1, 3, 65, 129)).shape == (1, 19, 65, 129)


@torch.no_grad()
def test_removing_dead_filters_keeps_the_outputs():
    """Zero the filters to drop (weights, BN shift and mean): the pruned net computes the same.

    This checks every slice: residual and CFF groups, BN parameters, consumers' inputs.
    """
    torch.manual_seed(1)
    model = icnet(width=0.125, aux_classifiers=True).eval()
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.2, 0.2)
            module.running_var.uniform_(0.5, 1.5)
            module.bias.uniform_(-0.2, 0.2)
    generator = torch.Generator().manual_seed(2)
    for group in channel_groups(model):
        width = model.layer_channels()[group[0]]
        dead = torch.randperm(width, generator=generator)[: width - round(0.5 * width)]
        for name in group:
            layer = getattr(model, name)
            layer.conv.weight[dead] = 0
            layer.bn.bias[dead] = 0
            layer.bn.running_mean[dead] = 0
        assert all(filter_l1(model, name)[dead].sum() == 0 for name in group)
    x = 50 * torch.randn(1, 3, 65, 129)
    pruned = prune(model, 0.5)
    assert parameters(pruned) < 0.3 * parameters(model)
    torch.testing.assert_close(pruned(x), model(x), rtol=1e-4, atol=1e-4)
    model.train(), pruned.train()
    for name, value in pruned(x).items():
        torch.testing.assert_close(value, model(x)[name], rtol=1e-4, atol=1e-4)


def test_prune_command_fine_tunes_each_step_and_the_result_loads_in_the_node(tmp_path, trained_run, capsys):
    config, _ = trained_run
    flags = ["--dataset", "synthetic", "--synthetic-size", "65", "129", "--synthetic-train", "4",
             "--synthetic-val", "1", "--width", "0.125", "--input-size", "65", "129", "--crop-size", "65", "129",
             "--batch-size", "2", "--iterations", "1", "--workers", "0", "--threads", "1", "--no-progress",
             "--no-tensorboard", "--keep-rates", "0.75", "0.5"]
    init = Path(config.output_dir) / "checkpoint.pth"
    assert main(["prune", "--init", str(init), "--output-dir", str(tmp_path), *flags]) == 0
    stages = [ckpt.load(tmp_path / f"keep_{rate}" / "checkpoint.pth") for rate in ("0.75", "0.5")]
    assert [s["iteration"] for s in stages] == [1, 1]
    channels = stages[1]["architecture"]["channels"]
    assert channels == {name: round(0.5 * count) for name, count in icnet(width=0.125).layer_channels().items()}
    assert main(["export", "--checkpoint", str(tmp_path / "keep_0.5" / "checkpoint.pth"),
                 "--output", str(tmp_path / "pruned.safetensors")]) == 0
    model, metadata = load_model(tmp_path / "pruned.safetensors")
    assert model.layer_channels() == channels
    assert parameters(model) < 0.3 * parameters(icnet(width=0.125))
    assert "keep 0.5: " in capsys.readouterr().out
