"""The node's parameters: names, defaults, descriptors and validation.

``PARAMETERS`` is the single list the node declares, with each parameter's meaning;
``config/icnet.yaml`` and the table of docs/parameters.md are generated from it.
Read-only parameters fix the model and the connections for the node's lifetime; the
others can be changed at run time with ``ros2 param set``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor

from icnet_ros.runtime.image_decoding import SUPPORTED_ENCODINGS
from icnet_ros.weights.demo import default_weights_path

# The weights used when ``weights`` is '': the demo weights shipped in the package.
DEFAULT_WEIGHTS: Path = default_weights_path()

DEVICE_PATTERN = re.compile(r"^(auto|cpu|cuda|cuda:\d+)$")


class ConfigurationError(ValueError):
    """A parameter value the node cannot work with, with the reason."""


@dataclass(frozen=True)
class ParameterSpec:
    """One declared parameter."""

    name: str
    default: Any
    description: str
    read_only: bool = False
    choices: tuple[str, ...] = ()
    int_range: tuple[int, int] | None = None
    float_range: tuple[float, float] | None = None

    def descriptor(self) -> ParameterDescriptor:
        constraints = f"one of: {', '.join(self.choices)}" if self.choices else ""
        # A list default ([]) would fix the type to a byte array: lists are typed by their values.
        descriptor = ParameterDescriptor(name=self.name, description=self.description,
                                         read_only=self.read_only,
                                         additional_constraints=constraints,
                                         dynamic_typing=isinstance(self.default, list))
        if self.int_range is not None:
            descriptor.integer_range = [IntegerRange(from_value=self.int_range[0],
                                                     to_value=self.int_range[1], step=1)]
        if self.float_range is not None:
            descriptor.floating_point_range = [FloatingPointRange(
                from_value=self.float_range[0], to_value=self.float_range[1], step=0.0)]
        return descriptor

    def check(self, value: Any) -> str | None:
        """Why ``value`` is refused (ranges and types are checked by rclpy), or None."""
        if self.choices and value not in self.choices:
            return f"{self.name} must be one of {', '.join(self.choices)}; got {value!r}"
        return None


_RELIABILITY = ("best_effort", "reliable")

PARAMETERS: tuple[ParameterSpec, ...] = (
    # The descriptions are the parameters' one written meaning: ``ros2 param describe`` shows
    # them, docs/parameters.md and config/icnet.yaml are generated from this list (a test
    # keeps them equal: test/package/test_docs.py).
    # The model (read-only: reload by restarting or cleanup/configure with a new node).
    ParameterSpec("weights", "", "Weight file (.safetensors, icnet_ros format); '' = the demo weights "
                  "shipped in the package", read_only=True),
    ParameterSpec("labels_file", "", "Label set file (JSON/YAML {name, names: [...], colors: [[r, g, b], "
                  "...]}) replacing the weights' own (Cityscapes); its class count must match the "
                  "network; '' = the weights' label set", read_only=True),
    ParameterSpec("class_groups", "", "Class-groups file (YAML/JSON, MIT-SPARK semantic_inference's "
                  "grouping format) mapping the classes to groups for the class mask, the colours and "
                  "label_info; '' = the classes themselves", read_only=True),
    ParameterSpec("device", "auto", "auto (CUDA if available), cpu, cuda or cuda:N", read_only=True),
    ParameterSpec("precision", "fp32", "Inference precision", read_only=True,
                  choices=("fp32", "fp16", "bf16")),
    ParameterSpec("input_height", 0, "Network input height; 0 = from the weights' metadata (the "
                  "official 1025 for the official weights)", read_only=True, int_range=(0, 8192)),
    ParameterSpec("input_width", 0, "Network input width; 0 = from the weights' metadata (the "
                  "official 2049 for the official weights)", read_only=True, int_range=(0, 8192)),
    ParameterSpec("pipeline_depth", 2, "Frames in flight in the engine (2: decode of frame "
                  "N+1 overlaps inference of frame N)", read_only=True, int_range=(1, 8)),
    ParameterSpec("cpu_threads", 0, "PyTorch intra-op threads when running on the CPU; 0 = "
                  "PyTorch's default (one per core)", read_only=True, int_range=(0, 256)),
    ParameterSpec("cpu_postprocess_thread", True, "On the CPU: score resize and argmax on a second "
                  "thread, overlapping the next frame's inference (faster with a free core, a "
                  "little slower on a saturated CPU: docs/performance.md)", read_only=True),
    ParameterSpec("cpu_backend", "auto", "On the CPU in fp32: auto (onnxruntime where installed: the "
                  "BN-folded network is exported once per weights and input size into "
                  "~/.cache/icnet_ros/onnx; else torch), torch or onnxruntime", read_only=True,
                  choices=("auto", "torch", "onnxruntime")),
    ParameterSpec("cuda_graphs", True, "On CUDA: run the network as CUDA graphs captured at the "
                  "warm-up (one per batch size; eager where capture fails, with the reason logged)",
                  read_only=True),
    ParameterSpec("warmup_height", 0, "Image height used to warm the engine up on activate "
                  "(your camera's); 0 = the network input height", read_only=True,
                  int_range=(0, 16384)),
    ParameterSpec("warmup_width", 0, "Image width used to warm the engine up on activate "
                  "(your camera's); 0 = the network input width", read_only=True,
                  int_range=(0, 16384)),
    ParameterSpec("warmup_encoding", "rgb8", "Raw image encoding of the warm-up frames (your camera's: "
                  "on CUDA its staging buffers are ready before the first frame)", read_only=True,
                  choices=SUPPORTED_ENCODINGS),
    # Connections (read-only).
    ParameterSpec("input_transport", "raw", "raw: subscribe to 'image' (sensor_msgs/Image); "
                  "compressed: to 'image/compressed' (sensor_msgs/CompressedImage)",
                  read_only=True, choices=("raw", "compressed")),
    ParameterSpec("image_topics", [], "Input image topics, one per camera, served by one model "
                  "with batched forward passes; each camera's outputs go in its namespace "
                  "(front/image -> front/segmentation/class_mask); [] = the single topic 'image'", read_only=True),
    ParameterSpec("batch_wait_ms", 10.0, "Several cameras: once one camera's frame waits, how "
                  "long to wait for the others' so that they share one forward pass",
                  read_only=True, float_range=(0.0, 1000.0)),
    ParameterSpec("input_qos_reliability", "best_effort", "Input reliability (best_effort "
                  "matches reliable and best-effort cameras)", read_only=True, choices=_RELIABILITY),
    ParameterSpec("input_qos_depth", 1, "Input history depth", read_only=True, int_range=(1, 100)),
    ParameterSpec("output_qos_reliability", "reliable", "Output reliability", read_only=True,
                  choices=_RELIABILITY),
    ParameterSpec("output_qos_depth", 1, "Output history depth", read_only=True, int_range=(1, 100)),
    ParameterSpec("autostart", True, "Configure and activate on start-up (no lifecycle "
                  "manager needed)", read_only=True),
    ParameterSpec("release_on_deactivate", False, "Deactivate releases the model (and GPU "
                  "memory) and activate reloads it; false: the model stays loaded and warm, and "
                  "activate resumes without a reload (docs/node.md, Lifecycle)", read_only=True),
    ParameterSpec("diagnostics_period_s", 1.0, "Period of the /diagnostics report", read_only=True,
                  float_range=(0.05, 60.0)),
    ParameterSpec("diagnostics_window", 5, "Diagnostics periods in the statistics window (rates, "
                  "percentiles, errors)", read_only=True, int_range=(1, 100)),
    # Changeable at run time.
    ParameterSpec("publish_color_mask", True, "Publish 'color_mask' (rgb8) while subscribed"),
    ParameterSpec("publish_overlay", True, "Publish 'overlay' (rgb8 blend) while subscribed"),
    ParameterSpec("publish_confidence", False, "Publish 'confidence' (32FC1 max softmax) while "
                  "subscribed"),
    ParameterSpec("publish_timing", True, "Publish per-frame stage timings on 'timing'"),
    ParameterSpec("overlay_alpha", 0.5, "Weight of the colour mask in the overlay",
                  float_range=(0.0, 1.0)),
    ParameterSpec("max_image_pixels", 16777216, "Frames with more pixels are refused (oversize)",
                  int_range=(1, 268435456)),
    ParameterSpec("min_output_hz", 0.0, "Diagnostics WARN when the output rate is lower; "
                  "0 = no fixed floor (min_output_fraction judges)", float_range=(0.0, 1000.0)),
    ParameterSpec("min_output_fraction", 0.5, "Diagnostics WARN when the node answers fewer "
                  "than this fraction of the frames that arrive (over the window, one frame of "
                  "slack); 0 = off", float_range=(0.0, 1.0)),
    ParameterSpec("stale_after_s", 2.0, "Diagnostics WARN when no frame arrived for this long",
                  float_range=(0.01, 3600.0)),
    ParameterSpec("max_output_delay_s", 1.0, "Diagnostics WARN when an output is older than "
                  "this at publish (header stamp to now); 0 = no limit", float_range=(0.0, 3600.0)),
)

# Declared on configure, from the label set (not in PARAMETERS: its default is not known before).
CLASS_NAMES_DESCRIPTION = "Class names by mask value (from the label set, or the class groups)"

SPECS = {spec.name: spec for spec in PARAMETERS}


@dataclass(frozen=True)
class RuntimeSettings:
    """The parameters that may change while the node runs (read by the worker threads)."""

    publish_color_mask: bool
    publish_overlay: bool
    publish_confidence: bool
    publish_timing: bool
    overlay_alpha: float
    max_image_pixels: int
    min_output_hz: float
    min_output_fraction: float
    stale_after_s: float
    max_output_delay_s: float

    @classmethod
    def from_values(cls, values: dict[str, Any]) -> RuntimeSettings:
        return cls(**{name: values[name] for name in cls.__dataclass_fields__})


def check_device(device: str) -> str:
    if not DEVICE_PATTERN.match(device):
        raise ConfigurationError(f"device must be auto, cpu, cuda or cuda:N; got {device!r}")
    return device


def check_read_only(values: dict[str, Any]) -> None:
    """Refuse read-only values the descriptors cannot express (choices, pairs)."""
    check_device(values["device"])
    for spec in PARAMETERS:
        reason = spec.check(values[spec.name])
        if reason:
            raise ConfigurationError(reason)
    for first, second in (("input_height", "input_width"), ("warmup_height", "warmup_width")):
        if (values[first] == 0) != (values[second] == 0):
            raise ConfigurationError(f"{first} and {second} are both 0 (automatic) or both set; "
                                     f"got {values[first]} and {values[second]}")


def readable_file(value: str, what: str) -> Path:
    """``value`` as a path to an existing, readable regular file, or a clear error."""
    path = Path(value).expanduser()
    if not path.exists():
        raise ConfigurationError(f"{what} {str(path)!r} does not exist")
    if not path.is_file():
        raise ConfigurationError(f"{what} {str(path)!r} is not a file")
    if not os.access(path, os.R_OK):
        raise ConfigurationError(f"{what} {str(path)!r} is not readable (permissions)")
    return path


def weights_path(value: str) -> Path:
    """The weight file named by the ``weights`` parameter ('' = the default weights)."""
    if value:
        return readable_file(value, "weights file")
    if not DEFAULT_WEIGHTS.is_file():
        raise ConfigurationError(
            "weights are required: set the 'weights' parameter to an icnet_ros .safetensors "
            "file (e.g. -p weights:=/path/to/icnet.safetensors); the default demo weights "
            f"{DEFAULT_WEIGHTS} are missing from this installation")
    return readable_file(str(DEFAULT_WEIGHTS), "default weights file")
