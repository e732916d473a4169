"""CUDA graphs of the engine's network: one per pipeline slot and batch size.

At fp16 on a large GPU ICNet's ~200 kernels per frame take longer to launch than to run;
a graph launches them all at once. Each graph reads a static input, which the engine's
pre-processing writes into, and leaves its scores in a static output, which the
post-processing reads; both belong to the graph, so nothing is allocated per frame.
A graph is captured once its batch size ran eagerly (cuDNN has chosen its algorithms):
by :meth:`NetworkGraphs.capture` after the warm-up, or on the second use of a batch
size the warm-up did not cover (capturing synchronises the device once). All graphs share
one memory pool: they replay in order on the engine's one compute stream, each output
read before the next replay. Where capture fails the network runs eagerly for that batch
size, and ``status`` says why.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import torch


@dataclass
class _Graph:
    graph: torch.cuda.CUDAGraph
    input: torch.Tensor
    output: torch.Tensor


class NetworkGraphs:
    """The network on ``stream``, through a CUDA graph per (slot, batch size) where captured."""

    def __init__(self, network: Callable[[torch.Tensor], torch.Tensor], stream: torch.cuda.Stream,
                 input_shape: tuple[int, int, int], dtype: torch.dtype, memory_format: torch.memory_format,
                 enabled: bool = True) -> None:
        self._network = network
        self._stream = stream
        self._input_shape = input_shape
        self._dtype = dtype
        self._memory_format = memory_format
        self.enabled = enabled
        self._graphs: dict[tuple[int, int], _Graph] = {}
        self._eager: set[tuple[int, int]] = set()  # ran eagerly once: ready to capture
        self._failed: dict[int, str] = {}  # batch size -> why its capture failed
        self._pool = torch.cuda.graph_pool_handle() if enabled else None

    @property
    def status(self) -> str:
        """What runs the network, for the log."""
        if not self.enabled:
            return "eager (cuda_graphs off)"
        sizes = sorted({batch for _, batch in self._graphs})
        parts = [f"CUDA graphs for batch sizes {', '.join(map(str, sizes))}" if sizes else "no CUDA graph yet"]
        parts += [f"eager for batch size {batch}: capture failed: {why}" for batch, why in sorted(self._failed.items())]
        return "; ".join(parts)

    def captured(self) -> int:
        """Graphs captured so far."""
        return len(self._graphs)

    def input(self, slot: int, batch: int) -> torch.Tensor | None:
        """The static input of (slot, batch) to write the pre-processed frames into, capturing
        its graph first where due; None: the network runs eagerly on a stacked input."""
        key = (slot, batch)
        if key not in self._graphs and key in self._eager and self.enabled and batch not in self._failed:
            self.capture(slot, batch)
        graph = self._graphs.get(key)
        return None if graph is None else graph.input

    def run(self, slot: int, x: torch.Tensor) -> torch.Tensor:
        """The network's scores for ``x`` (the static input of (slot, len(x)), or a stacked one);
        a graph's output is overwritten by its next replay. On the stream, in inference mode."""
        key = (slot, x.shape[0])
        graph = self._graphs.get(key)
        if graph is None or x is not graph.input:
            self._eager.add(key)
            return self._network(x)
        graph.graph.replay()
        return graph.output

    def capture(self, slot: int, batch: int) -> None:
        """Capture the graph of (slot, batch), unless there is one, graphs are off or it failed
        before. Synchronises the device. A failure is warned about and leaves (slot, batch) eager."""
        if not self.enabled or (slot, batch) in self._graphs or batch in self._failed:
            return
        with torch.inference_mode():
            static = torch.zeros((batch, *self._input_shape), dtype=self._dtype, device=self._stream.device)
            static = static.contiguous(memory_format=self._memory_format)
            graph = torch.cuda.CUDAGraph()
            try:
                # thread_local: the engine's waiting thread may wait on events meanwhile.
                with torch.cuda.graph(graph, pool=self._pool, stream=self._stream, capture_error_mode="thread_local"):
                    output = self._network(static)
            except RuntimeError as error:
                self._failed[batch] = str(error).splitlines()[0]
                warnings.warn(f"CUDA graph capture failed for batch size {batch}, running it eagerly: "
                              f"{self._failed[batch]}", RuntimeWarning, stacklevel=2)
                return
        self._graphs[(slot, batch)] = _Graph(graph, static, output)

    def clear(self) -> None:
        """Release the graphs, their memory and the network (the engine is closing)."""
        self._graphs.clear()
        self._eager.clear()
        self._network = None
