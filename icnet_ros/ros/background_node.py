"""An rclpy node in its own Context, spun by a background executor thread.

The tools that talk to a running ``segmentation_node`` from another process
(``icnet-eval --mode live``, the ``icnet_bench`` instruments, the tests) each hold
one. Entities are created and destroyed by the executor's own thread
(:meth:`BackgroundNode.in_executor`): destroying a subscription while another thread
builds a wait set with it fails.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import rclpy
from rclpy.context import Context
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node


class BackgroundNode:
    """A node named ``name`` in a Context of its own, spun by a daemon thread from construction on."""

    def __init__(self, name: str) -> None:
        self.context = Context()
        rclpy.init(context=self.context)
        self.node = Node(name, context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self._thread = threading.Thread(target=self._spin, name=f"{name}-spin", daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        try:
            self.executor.spin()
        except ExternalShutdownException:
            pass

    def in_executor(self, function: Callable[[], Any], timeout: float = 20.0) -> Any:
        """Run ``function`` in the executor's thread and return its result (TimeoutError if it did not run)."""
        task = self.executor.create_task(function)
        deadline = time.monotonic() + timeout
        while not task.done():
            if time.monotonic() > deadline:
                raise TimeoutError(f"the executor of {self.node.get_name()} did not run a task in {timeout:g} s")
            time.sleep(0.005)
        return task.result()

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)
        self._thread.join(5.0)
