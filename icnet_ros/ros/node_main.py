"""The ``segmentation_node`` executable: the node until SIGINT/SIGTERM, a clean exit always.

Exit status 0 after a signal at any moment (loading the weights, warming up, active,
inside a deactivate), 1 when the parameters or the model are unusable, 2 for an invalid
command line. Every exit step runs whatever the others raise.
"""

from __future__ import annotations

import os
import sys

import rclpy
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor

from icnet_ros.ros.fastdds_profile import share_profile_variables
from icnet_ros.ros.parameters import ConfigurationError
from icnet_ros.ros.segmentation_node import NODE_NAME, SegmentationNode
from icnet_ros.ros.shutdown_signals import ShutdownSignals

EXIT_TIMEOUT_S = 1.0    # waiting for the worker threads at exit (daemons: the process ends them)


def main(args: list[str] | None = None) -> int:
    """Run the node until SIGINT/SIGTERM (exit 0 at any moment, start-up included); 1 if
    its parameters or model are unusable, 2 for an invalid command line."""
    logger = rclpy.logging.get_logger(NODE_NAME)
    # Before rclpy.init: rclpy chains to these handlers. The context's shutdown ends spin even
    # where the signal's exception lands in a finaliser, which drops it.
    signals = ShutdownSignals(on_first=rclpy.try_shutdown).install()
    node = None
    code = 0
    try:
        share_profile_variables(os.environ)     # before rclpy.init: the Fast DDS of any distribution reads it
        try:
            rclpy.init(args=args)
        except RuntimeError as error:   # rcl refuses e.g. a malformed --ros-args rule
            logger.error(f"invalid command line: {error}")
            return 2
        node = SegmentationNode()
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        if node.autostart and not node.start() and signals.received is None:
            logger.error("the node could not start (see above); exiting")
            code = 1
        elif signals.received is None:
            executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):   # ShutdownRequested included
        pass
    except (ConfigurationError, rclpy.exceptions.ParameterException) as error:
        logger.error(f"invalid parameters: {error}")
        code = 1
    except Exception:
        if signals.received is None:
            raise
        # A signal shut the context down under a call that was running: that call's error.
    finally:
        signals.hold()
        if node is not None:
            _close(node.release, EXIT_TIMEOUT_S)
            _close(node.destroy_node)
        _close(rclpy.try_shutdown)
    return code


def _close(step, *args) -> None:
    """One step of the exit: whatever it raises, the next ones still run."""
    try:
        step(*args)
    except Exception as error:  # noqa: BLE001 - exiting anyway; say what was left behind
        rclpy.logging.get_logger(NODE_NAME).error(f"at exit, {step.__name__} failed: {error}")


if __name__ == "__main__":
    sys.exit(main())
