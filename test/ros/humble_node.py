"""``segmentation_node`` with the rclpy that Humble has: the newer names hidden from the project.

    python humble_node.py NAMES_FILE --ros-args ...

The real node (its ``main``, real DDS, real weights) on the installed rclpy, where every
name of ``NAMES_FILE`` (one per line, e.g. ``rclpy.node.Node.add_post_set_parameters_callback``:
the public names of a newer rclpy that Humble's lacks, ../shared/ros2-distros) is hidden
from the modules of icnet_ros, icnet_bench and icnet_train: looking one up from there raises
AttributeError (``hasattr`` is False, ``from rclpy.x import Name`` fails), as on Humble.
rclpy's own code still finds them, since this rclpy's internals need them. Prints
``hidden N names`` first, so a test knows the list was applied.
"""

from __future__ import annotations

import importlib
import sys
import types
from pathlib import Path

PROJECT = ("icnet_ros", "icnet_bench", "icnet_train")


def _called_from_project() -> bool:
    """Whether the lookup being answered comes from the project's code (frames: this
    function, the descriptor's __get__, the caller)."""
    caller = sys._getframe(2)
    return caller.f_globals.get("__name__", "").startswith(PROJECT)


class Hidden:
    """A class attribute (a method, a class) that the project cannot see."""

    def __init__(self, original, name: str) -> None:
        self.original, self.name = original, name

    def __get__(self, instance, owner=None):
        if _called_from_project():
            raise AttributeError(f"{self.name} is not in Humble's rclpy")
        return self.original.__get__(instance, owner) if hasattr(self.original, "__get__") else self.original


def _resolve(name: str):
    """(owner, attribute): the longest importable module prefix of ``name``, then getattr."""
    parts = name.split(".")
    for end in range(len(parts) - 1, 0, -1):
        try:
            owner = importlib.import_module(".".join(parts[:end]))
        except ImportError:
            continue
        for part in parts[end:-1]:
            owner = getattr(owner, part)
        return owner, parts[-1]
    raise ImportError(name)


def _hide_module_attribute(module: types.ModuleType, attribute: str, name: str) -> None:
    """A property of the module's own class: module globals (rclpy's code) are untouched."""
    if type(module) is types.ModuleType:
        module.__class__ = type(f"HumbleView_{module.__name__.replace('.', '_')}", (types.ModuleType,), {})
    original = module.__dict__[attribute]

    def get(_module):
        if sys._getframe(1).f_globals.get("__name__", "").startswith(PROJECT):
            raise AttributeError(f"{name} is not in Humble's rclpy")
        return original
    setattr(type(module), attribute, property(get))


def hide(names: list[str]) -> int:
    """Hide each name from the project; the number hidden (members of a class first)."""
    hidden = 0
    for name in sorted(names, key=lambda n: -n.count(".")):
        try:
            owner, attribute = _resolve(name)
        except (ImportError, AttributeError):
            continue   # its module or class is not in this rclpy either
        if isinstance(owner, types.ModuleType):
            if attribute in owner.__dict__:
                _hide_module_attribute(owner, attribute, name)
                hidden += 1
            continue
        definer = next((cls for cls in owner.__mro__ if attribute in cls.__dict__), None)
        if definer is not None:
            setattr(definer, attribute, Hidden(definer.__dict__[attribute], name))
            hidden += 1
    return hidden


if __name__ == "__main__":
    count = hide(Path(sys.argv[1]).read_text().split())
    print(f"hidden {count} names", flush=True)
    from icnet_ros.ros import node_main
    sys.exit(node_main.main([sys.argv[0], *sys.argv[2:]]))
