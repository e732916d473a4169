"""Weight files of a random ICNet: they exercise the machinery (node, tools, tests), not the accuracy."""

from __future__ import annotations

from pathlib import Path


def random_weights(path: Path, *, width: float = 0.125, input_size: tuple[int, int] = (65, 129), seed: int = 0,
                   branches: str = "sub124", bn_statistics: bool = False, source: str = "random initialisation") -> Path:
    """A real weight file at ``path`` of an ICNet of ``width`` and ``branches`` with random weights
    (seeded); ``bn_statistics``: non-trivial BN means and variances instead of 0 and 1."""
    import torch

    from icnet_ros.model import icnet
    from icnet_ros.weights.labels import CITYSCAPES
    from icnet_ros.weights.preprocessing import Preprocessing
    from icnet_ros.weights.weight_file import WeightsMetadata, save_weights

    torch.manual_seed(seed)
    model = icnet(width=width, branches=branches)
    if bn_statistics:
        with torch.no_grad():
            for name, buffer in model.named_buffers():
                if name.endswith("running_mean"):
                    buffer.uniform_(-0.1, 0.1)
                elif name.endswith("running_var"):
                    buffer.uniform_(0.5, 1.5)
    metadata = WeightsMetadata({}, CITYSCAPES, Preprocessing(input_size=tuple(input_size)),
                               {"source": source, "seed": seed})
    save_weights(Path(path), model, metadata)
    return Path(path)
