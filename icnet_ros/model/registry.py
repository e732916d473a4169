"""The networks by name: what a weight file's ``architecture`` metadata builds.

An architecture is ``{"name": ..., **builder arguments}``, e.g. ``{"name": "pidnet",
"variant": "s", "num_classes": 19, ...}``; every network records its builder arguments
in ``config``, so ``architecture_of`` and ``build_network`` round-trip.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from icnet_ros.model.ddrnet import DDRNet, ddrnet
from icnet_ros.model.dual_branch_blocks import OUTPUT_STRIDE
from icnet_ros.model.icnet import ICNet, icnet
from icnet_ros.model.pidnet import PIDNet, pidnet

BUILDERS: dict[str, Callable[..., nn.Module]] = {"icnet": icnet, "pidnet": pidnet, "ddrnet": ddrnet}
_NAMES: dict[type, str] = {ICNet: "icnet", PIDNet: "pidnet", DDRNet: "ddrnet"}


def build_network(architecture: dict) -> nn.Module:
    """The (untrained) network ``architecture`` names. Raises ValueError for an unknown name
    or arguments the builder refuses."""
    arguments = dict(architecture)
    name = arguments.pop("name", "icnet")
    if name not in BUILDERS:
        raise ValueError(f"unknown architecture {name!r} (known: {', '.join(BUILDERS)})")
    try:
        return BUILDERS[name](**arguments)
    except TypeError as error:
        raise ValueError(f"architecture {name!r} cannot be built: {error}") from None


def architecture_name(model: nn.Module) -> str:
    """``icnet``, ``pidnet`` or ``ddrnet``."""
    for cls, name in _NAMES.items():
        if isinstance(model, cls):
            return name
    raise ValueError(f"not a network of the registry: {type(model).__name__}")


def architecture_of(model: nn.Module) -> dict:
    """The architecture that rebuilds ``model`` (its name and builder arguments)."""
    return {"name": architecture_name(model), **model.config}


def display_name(architecture: dict) -> str:
    """A human name: ``ICNet``, ``PIDNet-S``, ``DDRNet-23-slim``."""
    name = architecture.get("name", "icnet")
    if name == "pidnet":
        return f"PIDNet-{str(architecture.get('variant', 's')).upper()}"
    if name == "ddrnet":
        return f"DDRNet-{architecture.get('variant', '23-slim')}"
    return "ICNet"


def check_input_size(architecture: dict, size: tuple[int, int]) -> None:
    """Refuse a network input ``size`` (height, width) the network cannot take: PIDNet and DDRNet
    need multiples of 8 (ICNet takes any size)."""
    if architecture.get("name", "icnet") in ("pidnet", "ddrnet") and (size[0] % OUTPUT_STRIDE or size[1] % OUTPUT_STRIDE):
        raise ValueError(f"{display_name(architecture)} needs a network input height and width divisible by "
                         f"{OUTPUT_STRIDE}, got {size[0]}x{size[1]}")
