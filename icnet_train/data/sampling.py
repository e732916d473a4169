"""Deterministic data order and augmentation, independent of processes and workers.

Iteration ``i`` of a run uses the samples at positions ``i*B .. i*B+B-1`` (B the global
batch) of an endless stream made of one shuffled pass over the data set after another
(pass ``e`` shuffled by ``seed`` and ``e``). Each process takes its contiguous share of
every micro-batch, and each sample is augmented with a generator seeded by its stream
position. So a run resumed at iteration ``i`` sees exactly the batches it would have
seen, and N processes together see the batches one process would.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

Transform = Callable[[np.ndarray, np.ndarray, np.random.Generator], tuple[torch.Tensor, torch.Tensor]]


class StepSampler(Sampler):
    """Yields ``(index, position)`` keys for this process's share of iterations start..stop."""

    def __init__(self, size: int, batch_size: int, accumulation: int, rank: int, world_size: int,
                 seed: int, start: int, stop: int) -> None:
        if batch_size % (accumulation * world_size):
            raise ValueError(f"batch_size {batch_size} is not divisible by accumulation {accumulation} "
                             f"x {world_size} processes")
        self.size, self.batch_size, self.accumulation = size, batch_size, accumulation
        self.rank, self.world_size, self.seed = rank, world_size, seed
        self.start, self.stop = start, stop
        self.micro_batch = batch_size // (accumulation * world_size)

    def __len__(self) -> int:
        return (self.stop - self.start) * self.accumulation * self.micro_batch

    def __iter__(self) -> Iterator[tuple[int, int]]:
        order, current = None, -1
        for step in range(self.start, self.stop):
            for micro in range(self.accumulation):
                first = step * self.batch_size + (micro * self.world_size + self.rank) * self.micro_batch
                for position in range(first, first + self.micro_batch):
                    shuffle, offset = divmod(position, self.size)
                    if shuffle != current:
                        order = np.random.default_rng([self.seed, shuffle]).permutation(self.size)
                        current = shuffle
                    yield int(order[offset]), position


class Augmented(Dataset):
    """Applies ``transform`` to ``base[index]`` with a generator seeded by the stream position."""

    def __init__(self, base: Dataset, transform: Transform, seed: int) -> None:
        self.base, self.transform, self.seed = base, transform, seed

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, key: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        index, position = key
        image, label = self.base[index]
        return self.transform(image, label, np.random.default_rng([self.seed, 1, position]))
