"""Weight files of random networks: they exercise the machinery (node, tools, tests), not the accuracy."""

from __future__ import annotations

from pathlib import Path

# Small widths of each network, for tests and instruments (the official widths are the registry's defaults).
TINY_ARCHITECTURES: dict[str, dict] = {
    "pidnet-s": {"name": "pidnet", "variant": "s", "planes": 4, "ppm_planes": 8, "head_planes": 8},
    "pidnet-m": {"name": "pidnet", "variant": "m", "planes": 4, "ppm_planes": 8, "head_planes": 8},
    "pidnet-l": {"name": "pidnet", "variant": "l", "planes": 4, "ppm_planes": 8, "head_planes": 8},
    "ddrnet-23-slim": {"name": "ddrnet", "variant": "23-slim", "planes": 4, "spp_planes": 8, "head_planes": 8},
    "ddrnet-23": {"name": "ddrnet", "variant": "23", "planes": 4, "spp_planes": 8, "head_planes": 8},
}


def random_weights(path: Path, *, width: float = 0.125, input_size: tuple[int, int] = (65, 129), seed: int = 0,
                   branches: str = "sub124", bn_statistics: bool = False, source: str = "random initialisation",
                   architecture: dict | None = None) -> Path:
    """A real weight file at ``path`` of a network with random weights (seeded): an ICNet of ``width``
    and ``branches``, or the network ``architecture`` names (registry form, e.g. a value of
    :data:`TINY_ARCHITECTURES`; PIDNet and DDRNet need an ``input_size`` divisible by 8);
    ``bn_statistics``: non-trivial BN means and variances instead of 0 and 1."""
    import torch

    from icnet_ros.model import icnet
    from icnet_ros.model.registry import build_network
    from icnet_ros.weights.labels import CITYSCAPES
    from icnet_ros.weights.preprocessing import Preprocessing
    from icnet_ros.weights.weight_file import WeightsMetadata, save_weights

    torch.manual_seed(seed)
    model = icnet(width=width, branches=branches) if architecture is None else build_network(architecture)
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
