"""How a network expects its input: size, channel order, normalisation."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Preprocessing:
    """Input convention of a trained network.

    ``mean`` and ``std`` are given in R, G, B order on the 0..255 scale; ``std`` None
    means no division. ``channel_order`` is the order the network reads (``BGR`` for
    the official Caffe models). ``input_size`` is (height, width).
    """

    input_size: tuple[int, int] = (1025, 2049)
    channel_order: str = "BGR"
    mean: tuple[float, float, float] = (123.68, 116.779, 103.939)
    std: tuple[float, float, float] | None = None

    def __post_init__(self) -> None:
        if self.channel_order not in ("RGB", "BGR"):
            raise ValueError(f"channel_order must be RGB or BGR, got {self.channel_order!r}")
        if len(self.input_size) != 2 or min(self.input_size) < 1:
            raise ValueError(f"input_size must be two positive integers, got {self.input_size!r}")
        if len(self.mean) != 3 or (self.std is not None and (len(self.std) != 3 or min(self.std) <= 0)):
            raise ValueError("mean needs three values and std three positive values (or none)")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Preprocessing:
        std = data.get("std")
        return cls(tuple(int(v) for v in data["input_size"]), str(data["channel_order"]),
                   tuple(float(v) for v in data["mean"]),
                   None if std is None else tuple(float(v) for v in std))


OFFICIAL = Preprocessing()
