"""The ROS 2 distributions and Python versions this package runs on, and what differs between them.

Supported: Python 3.10 or newer with the rclpy of ROS 2 Humble (3.3), Jazzy (7.1) or Kilted
(9.1); the tests run on Kilted and Jazzy wheels and on Kilted's rclpy with the names Humble
lacks hidden. Older distributions (Foxy, Galactic: no ``rclpy.lifecycle``) are refused with
one line (:func:`require_supported_rclpy`, run when ``icnet_ros.ros`` is imported).

Where a newer rclpy has a better API the code uses it, and falls back on Humble:

- :func:`publisher_count`: ``Subscription.get_publisher_count`` (Jazzy) counts the
  publishers matched with this subscription; Humble counts those on the topic.
- :func:`add_parameter_callbacks`: post-set parameter callbacks (Jazzy) apply values once
  they are stored; Humble applies them in its on-set callback, once they are checked.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from typing import Any

SUPPORTED = "ROS 2 Humble, Jazzy or Kilted (rclpy 3.3 or newer) with Python 3.10 or newer"


class UnsupportedDistribution(SystemExit):
    """The rclpy found is too old; exits with the reason and what is supported, in one line."""


def unsupported_rclpy_reason(has_lifecycle: bool, ros_distro: str) -> str:
    """Why this rclpy cannot run the node ('' if it can): Humble introduced ``rclpy.lifecycle``."""
    if has_lifecycle:
        return ""
    found = f"ROS_DISTRO={ros_distro}" if ros_distro else "an rclpy"
    return f"icnet_ros needs {SUPPORTED}; {found} without rclpy.lifecycle (Foxy, Galactic or older) is not supported"


def require_supported_rclpy() -> None:
    """Exit with one line where rclpy imports but is older than Humble's (no check without rclpy)."""
    if importlib.util.find_spec("rclpy") is None:
        return
    reason = unsupported_rclpy_reason(importlib.util.find_spec("rclpy.lifecycle") is not None,
                                      os.environ.get("ROS_DISTRO", ""))
    if reason:
        raise UnsupportedDistribution(reason)


def publisher_count(node: Any, subscription: Any) -> int:
    """The publishers matched with ``subscription`` (rclpy of Jazzy and newer); on Humble, the
    publishers of its topic (QoS-incompatible ones included)."""
    matched = getattr(subscription, "get_publisher_count", None)
    return matched() if matched is not None else node.count_publishers(subscription.topic_name)


def add_parameter_callbacks(node: Any, check: Callable[[list], Any], apply: Callable[[list], None]) -> None:
    """``check(parameters)`` before parameters are set (its SetParametersResult may refuse
    them), ``apply(parameters)`` once they are accepted.

    Jazzy and newer run ``apply`` after the values are stored (a post-set callback). Humble
    has none: there ``apply`` runs in the on-set callback right after ``check`` accepted,
    before rclpy stores the values, so it must take them from ``parameters`` (with no other
    on-set callback, rclpy then stores them; that is this node's case).
    """
    if hasattr(node, "add_post_set_parameters_callback"):
        node.add_on_set_parameters_callback(check)
        node.add_post_set_parameters_callback(apply)
        return

    def check_then_apply(parameters: list) -> Any:
        result = check(parameters)
        if result.successful:
            apply(parameters)
        return result
    node.add_on_set_parameters_callback(check_then_apply)
