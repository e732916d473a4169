"""The ``segmentation_node`` executable: ICNet on camera images as a lifecycle node.

One frame through the node: the subscription callback puts the message into a one-slot
buffer (a frame replaced there before the worker took it counts as dropped); a submitter
thread takes the newest frame, validates or decodes it and submits it to the engine,
which keeps ``pipeline_depth`` frames in flight; a publisher thread collects the results
in order and publishes them with the input header unchanged, plus the frame's timings.
Nothing queues without bound: the slot holds one frame, the engine ``pipeline_depth``.

Several cameras (``image_topics``, see :mod:`cameras`): one slot per camera; the
submitter takes the frames that arrived together (waiting up to ``batch_wait_ms`` for
the other cameras once one frame waits) and runs them through one forward pass; each
camera's outputs, counters and diagnostics are its own.
"""

from __future__ import annotations

import functools
import sys
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import ParameterDescriptor, SetParametersResult
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.parameter import Parameter
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import Header

from icnet_ros.ros import diagnostics
from icnet_ros.ros.camera_info import SUBSCRIPTION_DEPTH, CalibrationsByStamp, camera_info_topic, output_topic
from icnet_ros.ros.cameras import cameras
from icnet_ros.ros.image_messages import compressed_frame, image_msg, raw_frame
from icnet_ros.ros.label_info import TOPIC as LABEL_INFO_TOPIC, LabelInfoPublishers
from icnet_ros.ros.latest_frame import LatestSlot, take_together
from icnet_ros.ros.parameters import (PARAMETERS, SPECS, ConfigurationError, RuntimeSettings,
                                      check_read_only, readable_file, weights_path)
from icnet_ros.ros.qos import qos_profile
from icnet_ros.runtime.heap import release_free_heap
from icnet_ros.runtime.image_decoding import ImageRejected
from icnet_ros.weights.labels import LabelSet
from icnet_ros.runtime.visualization import blend, colorize

if TYPE_CHECKING:
    from icnet_ros.runtime.engine import SegmentationEngine, SegmentationResult

NODE_NAME = "icnet_segmenter"
OUTPUT_TOPICS = ("class_mask", "color_mask", "overlay", "confidence")
LOG_PERIOD_S = 5.0      # at most one log line per problem kind in this period
STOP_TIMEOUT_S = 10.0   # waiting for in-flight frames when deactivating


@dataclass(frozen=True)
class _FrameTag:
    """What the publisher thread needs about a submitted frame."""

    camera: int
    header: Header
    decode_ms: float
    color_mask: bool
    overlay: bool
    confidence: bool


class SegmentationNode(LifecycleNode):
    """Lifecycle node ``icnet_segmenter``: class masks, colour masks, overlays, timings."""

    def __init__(self, **kwargs) -> None:
        super().__init__(NODE_NAME, **kwargs)
        for spec in PARAMETERS:
            self.declare_parameter(spec.name, spec.default, spec.descriptor())
        self._config = {spec.name: self.get_parameter(spec.name).value for spec in PARAMETERS}
        check_read_only(self._config)
        self._settings = RuntimeSettings.from_values(self._config)
        self.add_on_set_parameters_callback(self._check_parameters)
        self.add_post_set_parameters_callback(self._apply_parameters)

        self._prefix = self.get_fully_qualified_name().lstrip("/")
        self._compressed = self._config["input_transport"] == "compressed"
        self._cameras = cameras(self._config["image_topics"], self._compressed)
        self._batch_wait_s = self._config["batch_wait_ms"] / 1e3
        window = self._config["diagnostics_window"]
        period = self._config["diagnostics_period_s"]
        self._counters = [diagnostics.FrameCounters(time.monotonic(), window, window * period)
                          for _ in self._cameras]
        self._diagnostics_publisher = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.create_timer(period, self._publish_diagnostics)

        self._calibrations = [CalibrationsByStamp() for _ in self._cameras]
        self._label_info = LabelInfoPublishers(self, [camera.topic(LABEL_INFO_TOPIC) for camera in self._cameras])

        self._state = "unconfigured"
        self._engine: SegmentationEngine | None = None
        self._warm = False   # the engine ran its warm-up (kept over deactivate unless released)
        self._model: diagnostics.ModelInfo | None = None
        self._palette = None
        self._outputs: list[dict] = []  # per camera
        self._input_subscriptions: list = []
        condition = threading.Condition()
        self._slots: list[LatestSlot[Image | CompressedImage]] = [
            LatestSlot(condition) for _ in self._cameras]
        self._stopping = threading.Event()
        self._submitted = threading.Semaphore(0)
        self._submitter: threading.Thread | None = None
        self._collector: threading.Thread | None = None
        self._active_since: float | None = None
        self._log_lock = threading.Lock()
        self._logged_at: dict[str, float] = {}

    @property
    def autostart(self) -> bool:
        return bool(self._config["autostart"])

    # ------------------------------------------------------------------ lifecycle
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            self._load_engine()
        except Exception as error:  # noqa: BLE001 - any reason is reported, the node stays up
            self.get_logger().error(f"cannot configure: {error}")
            self._engine = self._model = None
            return TransitionCallbackReturn.FAILURE
        if not self.has_parameter("class_names"):
            self.declare_parameter("class_names", list(self._engine.labels.names), ParameterDescriptor(
                description="Class names by class id (from the label set)", read_only=True),
                ignore_override=True)
        output_qos = qos_profile(self._config["output_qos_reliability"], self._config["output_qos_depth"])
        for camera in self._cameras:
            outputs = {topic: self.create_lifecycle_publisher(Image, camera.topic(topic), output_qos)
                       for topic in OUTPUT_TOPICS}
            outputs["timing"] = self.create_lifecycle_publisher(DiagnosticArray, camera.topic("timing"),
                                                                output_qos)
            outputs.update({output_topic(topic): self.create_lifecycle_publisher(
                CameraInfo, camera.topic(output_topic(topic)), output_qos) for topic in OUTPUT_TOPICS})
            self._outputs.append(outputs)
        self._label_info.publish(self._engine.labels)
        self._state = "inactive"
        self.get_logger().info(f"configured: {self._model.describe()}")
        return super().on_configure(state)

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            if self._engine is None:
                self._load_engine()
            if not self._warm:
                height, width = self._config["warmup_height"], self._config["warmup_width"]
                self._engine.warmup((height, width) if height else tuple(self._engine.input_size),
                                    batch_size=len(self._cameras))
                self._warm = True
        except Exception as error:  # noqa: BLE001
            self.get_logger().error(f"cannot activate: {error}")
            return TransitionCallbackReturn.FAILURE
        result = super().on_activate(state)
        if result != TransitionCallbackReturn.SUCCESS:
            return result
        self._start_workers()
        input_qos = qos_profile(self._config["input_qos_reliability"], self._config["input_qos_depth"])
        message_type = CompressedImage if self._compressed else Image
        images = [self.create_subscription(message_type, camera.input_topic,
                                           functools.partial(self._on_image, index), input_qos)
                  for index, camera in enumerate(self._cameras)]
        info_qos = qos_profile(self._config["input_qos_reliability"], SUBSCRIPTION_DEPTH)
        calibrations = [self.create_subscription(
            CameraInfo, camera_info_topic(self.resolve_topic_name(camera.image_topic)),
            self._calibrations[index].put, info_qos) for index, camera in enumerate(self._cameras)]
        self._input_subscriptions = images + calibrations
        self._active_since = time.monotonic()
        self._state = "active"
        self.get_logger().info(f"active: segmenting {', '.join(s.topic_name for s in images)} "
                               f"(calibration from {', '.join(s.topic_name for s in calibrations)})")
        return result

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop()
        if self._config["release_on_deactivate"]:
            self._close_engine()
        self._state = "inactive"
        self.get_logger().info("inactive: " + ("model kept loaded and warm" if self._engine is not None
                                               else "model released"))
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.release()
        self._state = "unconfigured"
        return super().on_cleanup(state)

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.release()
        self._state = "finalized"
        return super().on_shutdown(state)

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.release()
        self._state = "unconfigured"
        return super().on_error(state)

    def start(self) -> bool:
        """Configure and activate (``autostart``); False if either transition failed."""
        return (self.trigger_configure() == TransitionCallbackReturn.SUCCESS
                and self.trigger_activate() == TransitionCallbackReturn.SUCCESS)

    def _load_engine(self) -> None:
        weights = weights_path(self._config["weights"])
        if not self._config["weights"]:
            self.get_logger().info(f"weights: '' -> using the demo weights {weights} (ICNet width 0.25 trained "
                                   "on synthetic street scenes; set 'weights' for a real camera)")
        labels = None
        if self._config["labels_file"]:
            labels = LabelSet.from_file(readable_file(self._config["labels_file"], "labels_file"))
        # Imported here, after the cheap checks: torch takes seconds to import, and a
        # misconfigured node should say so at once.
        from icnet_ros.runtime.engine import SegmentationEngine
        height, width = self._config["input_height"], self._config["input_width"]
        self._engine = SegmentationEngine(
            weights, device=self._config["device"], precision=self._config["precision"],
            input_size=(height, width) if height else None, labels=labels,
            pipeline_depth=self._config["pipeline_depth"],
            cpu_threads=self._config["cpu_threads"] or None,
            postprocess_thread=self._config["cpu_postprocess_thread"])
        self._warm = False
        self._palette = self._engine.labels.palette()
        self._model = diagnostics.ModelInfo(
            weights=weights.name, device=str(self._engine.device), precision=self._engine.precision,
            input_size=tuple(self._engine.input_size),
            labels=f"{self._engine.labels.name} ({self._engine.labels.num_classes} classes)")

    def _stop(self) -> None:
        """Stop receiving and finish the threads (deactivate); the engine stays."""
        self._active_since = None
        for subscription in self._input_subscriptions:
            self.destroy_subscription(subscription)
        self._input_subscriptions = []
        self._stopping.set()
        for slot in self._slots:
            slot.close()
        for thread in (self._submitter, self._collector):
            if thread is not None:
                thread.join(STOP_TIMEOUT_S)
                if thread.is_alive():
                    self.get_logger().warning(f"thread {thread.name} did not stop in {STOP_TIMEOUT_S} s")
        self._submitter = self._collector = None
        for calibrations in self._calibrations:
            calibrations.clear()

    def _close_engine(self) -> None:
        """Free the model and its (GPU) memory."""
        if self._engine is not None:
            self._engine.close()
            self._engine = None
        self._warm = False

    def release(self) -> None:
        """Stop, free the engine and remove the publishers (cleanup, shutdown)."""
        self._stop()
        self._close_engine()
        for outputs in self._outputs:
            for publisher in outputs.values():
                self.destroy_lifecycle_publisher(publisher)
        self._outputs.clear()
        self._label_info.destroy()
        self._model = None

    # ------------------------------------------------------------------ parameters
    def _check_parameters(self, parameters: list[Parameter]) -> SetParametersResult:
        for parameter in parameters:
            spec = SPECS.get(parameter.name)
            reason = spec.check(parameter.value) if spec else None
            if reason:
                return SetParametersResult(successful=False, reason=reason)
        return SetParametersResult(successful=True)

    def _apply_parameters(self, parameters: list[Parameter]) -> None:
        self._settings = RuntimeSettings.from_values(
            {name: self.get_parameter(name).value for name in RuntimeSettings.__dataclass_fields__})

    # ------------------------------------------------------------------ frames
    def _on_image(self, camera: int, msg: Image | CompressedImage) -> None:
        self._counters[camera].frame_arrived(time.monotonic())
        if self._slots[camera].put(msg):
            self._counters[camera].dropped.add()

    def _start_workers(self) -> None:
        self._stopping.clear()
        for slot in self._slots:
            slot.reopen()
        self._submitted = threading.Semaphore(0)   # one release per frame in the engine
        engine = self._engine
        self._submitter = threading.Thread(target=self._submit_frames, args=(engine,),
                                           name="icnet-submit", daemon=True)
        self._collector = threading.Thread(target=self._publish_results, args=(engine,),
                                           name="icnet-publish", daemon=True)
        self._submitter.start()
        self._collector.start()

    def _submit_frames(self, engine: SegmentationEngine) -> None:
        while not self._stopping.is_set():
            batch = take_together(self._slots, timeout=0.1, gather_s=self._batch_wait_s)
            if batch:
                self._submit(engine, batch)

    def _submit(self, engine: SegmentationEngine, batch: list[tuple[int, Image | CompressedImage]]) -> None:
        """Validate the frames (one per camera) and start them as one forward pass."""
        settings = self._settings
        frames, tags = [], []
        for camera, msg in batch:
            start = time.perf_counter()
            try:
                if self._compressed:
                    frame = compressed_frame(msg, settings.max_image_pixels)
                else:
                    frame = raw_frame(msg, settings.max_image_pixels)
            except ImageRejected as error:
                self._refuse(camera, error)
                continue
            decode_ms = (time.perf_counter() - start) * 1e3
            wanted = {topic: getattr(settings, f"publish_{topic}")
                      and self._outputs[camera][topic].get_subscription_count() > 0
                      for topic in OUTPUT_TOPICS[1:]}
            frames.append(frame)
            tags.append(_FrameTag(camera, msg.header, decode_ms, **wanted))
        if not frames:
            return
        want_confidence = any(tag.confidence for tag in tags)
        want_rgb = any(tag.overlay for tag in tags)
        try:
            if len(frames) == 1:
                engine.submit(frames[0], tag=tags[0], want_confidence=want_confidence, want_rgb=want_rgb)
                refusals = [None]
            else:
                refusals = engine.submit_batch(frames, tags=tags, want_confidence=want_confidence,
                                               want_rgb=want_rgb)
        except ImageRejected as error:
            self._refuse(tags[0].camera, error)
            return
        except Exception as error:  # noqa: BLE001 - counted and reported, the node keeps serving
            for tag in tags:
                self._fail(tag.camera, "inference", error)
            return
        for tag, refusal in zip(tags, refusals):
            if refusal is not None:
                self._refuse(tag.camera, refusal)
            else:
                self._submitted.release()

    def _publish_results(self, engine: SegmentationEngine) -> None:
        """Collect every submitted frame in order; publish unless stopping."""
        submitter = self._submitter
        while True:
            if not self._submitted.acquire(timeout=0.1):
                if self._stopping.is_set() and not submitter.is_alive():
                    return
                continue
            result = self._collect(engine)
            if result is None or self._stopping.is_set():
                continue
            try:
                self._publish(result)
            except Exception as error:  # noqa: BLE001
                self._fail(result.tag.camera, "publish", error)

    def _collect(self, engine: SegmentationEngine) -> SegmentationResult | None:
        """The oldest submitted frame's result; None when its inference failed."""
        while engine.pending():
            try:
                result = engine.collect(timeout=0.1)
            except Exception as error:  # noqa: BLE001
                for camera in range(len(self._cameras)):
                    self._fail(camera, "inference", error)
                return None
            if result is not None:
                return result
        return None

    def _publish(self, result: SegmentationResult) -> None:
        tag: _FrameTag = result.tag
        settings = self._settings
        outputs, counters = self._outputs[tag.camera], self._counters[tag.camera]
        timings = {stage: float(result.timings_ms.get(stage, 0.0)) for stage in diagnostics.STAGES}
        timings["decode"] += tag.decode_ms
        start = time.perf_counter()
        images = {"class_mask": result.class_mask}
        if tag.color_mask or tag.overlay:
            color = colorize(result.class_mask, self._palette)
            if tag.color_mask:
                images["color_mask"] = color
            if tag.overlay and result.rgb is not None:
                images["overlay"] = blend(result.rgb, color, settings.overlay_alpha)
        if tag.confidence and result.confidence is not None:
            images["confidence"] = result.confidence
        published = time.perf_counter()
        timings["postprocess"] += (published - start) * 1e3
        calibration = self._calibrations[tag.camera].matching(tag.header)
        if calibration is None:
            counters.without_camera_info.add()
        for topic, image in images.items():
            outputs[topic].publish(image_msg(tag.header, image))
            if calibration is not None:
                outputs[output_topic(topic)].publish(calibration)
        counters.processed.add()  # only once published: a failed publish counts as a failure alone
        timings["publish"] = (time.perf_counter() - published) * 1e3
        # Plain integers: rclpy's Time refuses the negative seconds a camera with a bad clock may send.
        stamp = tag.header.stamp
        age_s = (self.get_clock().now().nanoseconds - (stamp.sec * 1_000_000_000 + stamp.nanosec)) / 1e9
        now = time.monotonic()
        counters.delays.add(age_s)
        counters.stages.add(now, {**timings, "age": age_s * 1e3})
        counters.batch_sizes.add(now, result.batch_size)
        if settings.publish_timing:
            outputs["timing"].publish(
                diagnostics.timing(self._prefix, tag.header, timings, age_s * 1e3, result.batch_size))

    def _camera_label(self, camera: int) -> str:
        name = self._cameras[camera].name
        return f" from {name}" if name else ""

    def _refuse(self, camera: int, error: ImageRejected) -> None:
        counters = self._counters[camera]
        counters.refused.add(error.reason)
        if self._may_log(f"refused:{camera}:{error.reason}"):
            self.get_logger().warning(f"refused a frame{self._camera_label(camera)} ({error.reason}): "
                                      f"{error} [{counters.refused.by_reason()[error.reason]} so far]")

    def _fail(self, camera: int, kind: str, error: Exception) -> None:
        message = f"{kind} failed: {type(error).__name__}: {error}"
        self._counters[camera].failed(kind, message)
        if self._may_log(f"failed:{kind}"):
            self.get_logger().error(message)

    def _may_log(self, key: str) -> bool:
        now = time.monotonic()
        with self._log_lock:
            if now - self._logged_at.get(key, -LOG_PERIOD_S) < LOG_PERIOD_S:
                return False
            self._logged_at[key] = now
            return True

    # ------------------------------------------------------------------ diagnostics
    def _publish_diagnostics(self) -> None:
        release_free_heap()
        engine = self._engine
        state = diagnostics.NodeState(self._state, self._model,
                                      engine.memory_stats() if engine is not None else None,
                                      engine.pending() if engine is not None else 0,
                                      model_loaded=engine is not None)
        settings = self._settings
        thresholds = diagnostics.Thresholds(settings.min_output_hz, settings.stale_after_s,
                                            settings.max_output_delay_s, settings.min_output_fraction)
        stamp, now = self.get_clock().now().to_msg(), time.monotonic()
        reports = [diagnostics.report(self._prefix, stamp, now, self._active_since, counters,
                                      thresholds, state, camera.name)
                   for camera, counters in zip(self._cameras, self._counters)]
        self._diagnostics_publisher.publish(DiagnosticArray(
            header=reports[0].header, status=[status for report in reports for status in report.status]))


def main(args: list[str] | None = None) -> int:
    """Run the node until SIGINT/SIGTERM; 1 if its parameters or model are unusable."""
    logger = rclpy.logging.get_logger(NODE_NAME)
    try:
        rclpy.init(args=args)
    except RuntimeError as error:   # rcl refuses e.g. a malformed --ros-args rule
        logger.error(f"invalid command line: {error}")
        return 2
    node = None
    code = 0
    try:
        node = SegmentationNode()
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        if node.autostart and not node.start():
            logger.error("the node could not start (see above); exiting")
            return 1
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except (ConfigurationError, rclpy.exceptions.ParameterException) as error:
        logger.error(f"invalid parameters: {error}")
        code = 1
    finally:
        if node is not None:
            node.release()
            node.destroy_node()
        rclpy.try_shutdown()
    return code


if __name__ == "__main__":
    sys.exit(main())
