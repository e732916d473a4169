"""ICNet on camera images as a lifecycle node (the executable: :mod:`node_main`).

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

Nothing ends the node but a signal or a lifecycle shutdown: every executor callback and
worker thread catches what it can survive, counts it per kind in ``/diagnostics`` and logs
it throttled (:mod:`callback_guard`); each activation has its own worker threads, stop
flag and accounting, so a thread that outlives its deactivate never touches the next one.
"""

from __future__ import annotations

import functools
import math
import threading
import time
from typing import TYPE_CHECKING

from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import ParameterDescriptor, SetParametersResult
from rclpy.clock import Clock, ClockType
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.parameter import Parameter
from sensor_msgs.msg import CameraInfo, CompressedImage, Image

from icnet_ros.ros import diagnostics
from icnet_ros.ros.callback_guard import FaultLog
from icnet_ros.ros.camera_info import SUBSCRIPTION_DEPTH, CalibrationsByStamp, camera_info_topic
from icnet_ros.ros.camera_outputs import IMAGE_TOPICS, CameraOutputs, render
from icnet_ros.ros.cameras import cameras
from icnet_ros.ros.distributions import add_parameter_callbacks, publisher_count
from icnet_ros.ros.frame_workers import FrameTag, Workers
from icnet_ros.ros.image_messages import compressed_frame, raw_frame
from icnet_ros.ros.input_watch import InputWatch
from icnet_ros.ros.label_info import TOPIC as LABEL_INFO_TOPIC
from icnet_ros.ros.label_info import LabelInfoPublishers
from icnet_ros.ros.latest_frame import LatestSlot, take_together
from icnet_ros.ros.parameters import (
    CLASS_NAMES_DESCRIPTION,
    PARAMETERS,
    SPECS,
    RuntimeSettings,
    check_read_only,
    readable_file,
    weights_path,
)
from icnet_ros.ros.qos import qos_profile
from icnet_ros.runtime.heap import release_free_heap
from icnet_ros.runtime.image_decoding import ImageRejected
from icnet_ros.weights.class_groups import ClassGroups, read_class_groups
from icnet_ros.weights.labels import LabelSet

if TYPE_CHECKING:
    from icnet_ros.runtime.engine import SegmentationEngine, SegmentationResult

NODE_NAME = "icnet_segmenter"
STOP_TIMEOUT_S = 10.0   # waiting for in-flight frames when deactivating
RETRY_S = 0.05          # a worker's pause after a failed round, so a lasting fault cannot spin


class SegmentationNode(LifecycleNode):
    """Lifecycle node ``icnet_segmenter``: class masks, colour masks, overlays, timings."""

    def __init__(self, **kwargs) -> None:
        super().__init__(NODE_NAME, **kwargs)
        for spec in PARAMETERS:
            self.declare_parameter(spec.name, spec.default, spec.descriptor())
        self._config = {spec.name: self.get_parameter(spec.name).value for spec in PARAMETERS}
        check_read_only(self._config)
        self._settings = RuntimeSettings.from_values(self._config)
        add_parameter_callbacks(self, self._check_parameters, self._apply_parameters)

        self._prefix = self.get_fully_qualified_name().lstrip("/")
        self._compressed = self._config["input_transport"] == "compressed"
        self._cameras = cameras(self._config["image_topics"], self._compressed)
        self._batch_wait_s = self._config["batch_wait_ms"] / 1e3
        window = self._config["diagnostics_window"]
        period = self._config["diagnostics_period_s"]
        self._counters = [diagnostics.FrameCounters(time.monotonic(), window, window * period)
                          for _ in self._cameras]
        self._faults = FaultLog(self.get_logger())
        self._diagnostics_publisher = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        # Steady clock: with use_sim_time and no /clock (a paused bag) ROS time stands
        # still, exactly when the stale-input warning matters; stamps stay ROS time.
        self.create_timer(period, self._faults.guard("diagnostics timer", self._publish_diagnostics),
                          clock=Clock(clock_type=ClockType.STEADY_TIME))
        self._input_watches = [InputWatch(self.get_logger(), period) for _ in self._cameras]

        self._calibrations = [CalibrationsByStamp() for _ in self._cameras]
        self._label_info = LabelInfoPublishers(self, [camera.topic(LABEL_INFO_TOPIC) for camera in self._cameras])

        self._state = "unconfigured"
        self._engine: SegmentationEngine | None = None
        self._warm = False   # the engine ran its warm-up (kept over deactivate unless released)
        self._model: diagnostics.ModelInfo | None = None
        self._palette = None
        self._groups: ClassGroups | None = None  # the class_groups parameter's, once configured
        self._outputs: list[CameraOutputs] = []  # per camera
        self._inputs: list = []  # the image subscriptions (Node's own list is _subscriptions)
        self._calibration_inputs: list = []  # their camera_info subscriptions
        condition = threading.Condition()
        self._slots: list[LatestSlot[Image | CompressedImage]] = [
            LatestSlot(condition) for _ in self._cameras]
        self._workers: Workers | None = None
        self._active_since: float | None = None

    @property
    def autostart(self) -> bool:
        return bool(self._config["autostart"])

    # ------------------------------------------------------------------ lifecycle
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            self._load_engine()
            if not self.has_parameter("class_names"):
                self.declare_parameter("class_names", list(self._mask_labels.names), ParameterDescriptor(
                    description=CLASS_NAMES_DESCRIPTION, read_only=True),
                    ignore_override=True)
            output_qos = qos_profile(self._config["output_qos_reliability"], self._config["output_qos_depth"])
            for camera in self._cameras:
                outputs = CameraOutputs()
                self._outputs.append(outputs)   # tracked at once: a later failure releases them
                outputs.create(self, camera, output_qos)
            self._label_info.publish(self._mask_labels, self._model.network)
        except Exception as error:  # noqa: BLE001 - any reason is reported, the node stays up
            self.get_logger().error(f"cannot configure: {error}")
            self.release()
            return TransitionCallbackReturn.FAILURE
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
                                    batch_size=len(self._cameras),
                                    encoding=None if self._compressed else self._config["warmup_encoding"])
                self._warm = True
                if self._engine.cuda_graphs_status:
                    self.get_logger().info(f"network: {self._engine.cuda_graphs_status}")
            result = super().on_activate(state)
            if result != TransitionCallbackReturn.SUCCESS:
                return result
            self._start_workers()
            input_qos = qos_profile(self._config["input_qos_reliability"], self._config["input_qos_depth"])
            message_type = CompressedImage if self._compressed else Image
            for index, camera in enumerate(self._cameras):
                self._inputs.append(self.create_subscription(
                    message_type, camera.input_topic,
                    self._faults.guard("image callback", functools.partial(self._on_image, index)), input_qos))
            info_qos = qos_profile(self._config["input_qos_reliability"], SUBSCRIPTION_DEPTH)
            for index, camera in enumerate(self._cameras):
                self._calibration_inputs.append(self.create_subscription(
                    CameraInfo, camera_info_topic(self.resolve_topic_name(camera.image_topic)),
                    self._faults.guard("camera_info callback", self._calibrations[index].put), info_qos))
        except Exception as error:  # noqa: BLE001
            self.get_logger().error(f"cannot activate: {error}")
            self._stop()
            self._close_engine()
            return TransitionCallbackReturn.FAILURE
        self._active_since = time.monotonic()
        self._state = "active"
        self.get_logger().info(f"active: segmenting {', '.join(s.topic_name for s in self._inputs)} "
                               f"(calibration from {', '.join(s.topic_name for s in self._calibration_inputs)})")
        return result

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.get_logger().info("deactivating: frames still in flight count as dropped")
        # A thread that outlived the stop may still submit to this engine: never reuse it.
        if self._stop() or self._config["release_on_deactivate"]:
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
        self.get_logger().error(f"a transition from {state.label} failed; releasing everything")
        self.release()
        self._state = "unconfigured"
        return super().on_error(state)

    def start(self) -> bool:
        """Configure and activate (``autostart``); False if either transition failed."""
        return (self.trigger_configure() == TransitionCallbackReturn.SUCCESS
                and self.trigger_activate() == TransitionCallbackReturn.SUCCESS)

    @property
    def _mask_labels(self) -> LabelSet:
        """What the published masks' values mean: the class groups, or the network's classes."""
        return self._engine.labels if self._groups is None else self._groups.labels

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
        from icnet_ros.model.registry import display_name
        from icnet_ros.runtime.engine import SegmentationEngine
        height, width = self._config["input_height"], self._config["input_width"]
        self._engine = SegmentationEngine(
            weights, device=self._config["device"], precision=self._config["precision"],
            input_size=(height, width) if height else None, labels=labels,
            pipeline_depth=self._config["pipeline_depth"], max_pixels=self._settings.max_image_pixels,
            cpu_threads=self._config["cpu_threads"] or None,
            postprocess_thread=self._config["cpu_postprocess_thread"], cpu_backend=self._config["cpu_backend"],
            cuda_graphs=self._config["cuda_graphs"])
        self._warm = False
        self._groups = None
        if self._config["class_groups"]:  # unknown class names are refused here, listed
            self._groups = read_class_groups(readable_file(self._config["class_groups"], "class_groups"),
                                             self._engine.labels)
        self._palette = self._mask_labels.palette()
        grouped = "" if self._groups is None else f" in {self._groups.labels.num_classes} groups"
        self._model = diagnostics.ModelInfo(
            weights=weights.name, device=str(self._engine.device), precision=self._engine.precision,
            input_size=tuple(self._engine.input_size),
            labels=(f"{self._engine.labels.name} ({self._engine.labels.num_classes} classes){grouped}"
                    + ("" if self._groups is None else f" ({self._groups.labels.name})")),
            network=display_name(self._engine.metadata.architecture))

    def _stop(self, timeout: float | None = None) -> bool:
        """Stop receiving and finish the threads (``timeout``: STOP_TIMEOUT_S); the engine stays
        (deactivate). Every step runs whatever the others raise; frames still waiting or in
        flight count as dropped. True if a thread outlived ``timeout`` (it may still use the engine)."""
        timeout = STOP_TIMEOUT_S if timeout is None else timeout
        self._active_since = None
        subscriptions = self._inputs + self._calibration_inputs
        self._inputs, self._calibration_inputs = [], []
        for subscription in subscriptions:
            self._attempt("stop", self.destroy_subscription, subscription)
        workers, self._workers = self._workers, None
        outlived = False
        for camera, slot in enumerate(self._slots):
            if slot.close():
                self._counters[camera].dropped.add()
        if workers is not None:
            workers.stopping.set()
            for thread in workers.threads:
                thread.join(timeout)
                if thread.is_alive():
                    outlived = True
                    self.get_logger().warning(f"thread {thread.name} did not stop in {timeout:g} s; "
                                              "it ends on its own, the next activation starts new ones "
                                              "with a new model")
            for tag in workers.abandon():
                self._counters[tag.camera].dropped.add()
        for calibrations in self._calibrations:
            calibrations.clear()
        return outlived

    def _close_engine(self) -> None:
        """Free the model and its (GPU) memory; a failing close is counted, never raised."""
        engine, self._engine = self._engine, None
        self._warm = False
        if engine is not None:
            self._attempt("stop", engine.close)

    def release(self, timeout: float | None = None) -> None:
        """Stop, free the engine and remove the publishers (cleanup, shutdown, errors)."""
        self._stop(timeout)
        self._close_engine()
        outputs, self._outputs = self._outputs, []
        for publisher in (publisher for camera in outputs for publisher in camera):
            self._attempt("stop", self.destroy_lifecycle_publisher, publisher)
        self._attempt("stop", self._label_info.destroy)
        self._model = None

    def _attempt(self, kind: str, function, *args) -> None:
        """``function(*args)``; a failure is counted and logged, never raised."""
        self._faults.guard(kind, function)(*args)

    # ------------------------------------------------------------------ parameters
    def _check_parameters(self, parameters: list[Parameter]) -> SetParametersResult:
        try:
            for parameter in parameters:
                spec = SPECS.get(parameter.name)
                reason = spec.check(parameter.value) if spec else None
                if reason:
                    return SetParametersResult(successful=False, reason=reason)
        except Exception as error:  # noqa: BLE001 - refused with the reason, the node goes on
            self._faults.record("parameter check", error)
            return SetParametersResult(successful=False, reason=f"cannot check: {error}")
        return SetParametersResult(successful=True)

    def _apply_parameters(self, parameters: list[Parameter]) -> None:
        self._attempt("parameter update", self._update_settings, parameters)

    def _update_settings(self, parameters: list[Parameter]) -> None:
        """The runtime settings from ``parameters`` over the stored values (on Humble this
        runs before rclpy stores ``parameters``: :func:`distributions.add_parameter_callbacks`)."""
        values = {name: self.get_parameter(name).value for name in RuntimeSettings.__dataclass_fields__}
        values.update((p.name, p.value) for p in parameters if p.name in values)
        self._settings = RuntimeSettings.from_values(values)
        engine = self._engine
        if engine is not None:   # decoded compressed frames are checked again by the engine
            engine.max_pixels = self._settings.max_image_pixels

    # ------------------------------------------------------------------ frames
    def _on_image(self, camera: int, msg: Image | CompressedImage) -> None:
        self._counters[camera].frame_arrived(time.monotonic())
        if self._slots[camera].put(msg):
            self._counters[camera].dropped.add()

    def _start_workers(self) -> None:
        for slot in self._slots:
            slot.reopen()
        workers = Workers(self._engine)
        workers.threads = [
            threading.Thread(target=self._run_worker, args=("submitter thread", self._submit_frames, workers),
                             name="icnet-submit", daemon=True),
            threading.Thread(target=self._run_worker, args=("publisher thread", self._publish_results, workers),
                             name="icnet-publish", daemon=True)]
        self._workers = workers
        for thread in workers.threads:
            thread.start()

    def _run_worker(self, kind: str, round_of_work, workers: Workers) -> None:
        """Repeat ``round_of_work(workers)`` until this activation stops; a failed round is
        counted and logged, and the thread goes on."""
        while not workers.stopping.is_set():
            try:
                round_of_work(workers)
            except Exception as error:  # noqa: BLE001 - counted, logged, survived
                self._faults.record(kind, error)
                workers.stopping.wait(RETRY_S)

    def _submit_frames(self, workers: Workers) -> None:
        batch = take_together(self._slots, timeout=0.1, gather_s=self._batch_wait_s)
        if batch and not workers.stopping.is_set():
            self._submit(workers, batch)
        elif batch:    # taken as the activation stopped
            for camera, _ in batch:
                self._counters[camera].dropped.add()

    def _wanted(self, camera: int, topic: str) -> bool:
        """Whether ``topic``'s output of ``camera`` is switched on and subscribed."""
        if not getattr(self._settings, f"publish_{topic}"):
            return False
        try:
            return self._outputs[camera].subscribed(topic)
        except Exception as error:  # noqa: BLE001 - e.g. RCLError once the context shuts down
            self._faults.record("subscription count", error)
            return False

    def _submit(self, workers: Workers, batch: list[tuple[int, Image | CompressedImage]]) -> None:
        """Take the frames (one per camera) as the engine's input and start them as one forward
        pass; the engine decodes them (raw rows are only checked here, without a copy)."""
        settings = self._settings
        frames, tags = [], []
        for camera, msg in batch:
            try:
                if self._compressed:
                    frame = compressed_frame(msg)
                else:
                    frame = raw_frame(msg, settings.max_image_pixels)
            except ImageRejected as error:
                self._refuse(camera, error)
                continue
            except Exception as error:  # noqa: BLE001 - cv2.error, MemoryError: this frame fails alone
                self._fail(camera, "decode", error)
                continue
            wanted = {topic: self._wanted(camera, topic) for topic in IMAGE_TOPICS[1:]}
            frames.append(frame)
            tags.append(FrameTag(camera, msg.header, **wanted))
        if not frames:
            return
        want_confidence = any(tag.confidence for tag in tags)
        want_rgb = any(tag.overlay for tag in tags)
        engine = workers.engine
        try:
            if len(frames) == 1:
                engine.submit(frames[0], tag=tags[0], want_confidence=want_confidence, want_rgb=want_rgb)
                refusals = [None]
            else:
                refusals = engine.submit_batch(frames, tags=tags, want_confidence=want_confidence,
                                               want_rgb=want_rgb)
        except ImageRejected as error:
            self._refuse(tags[0].camera, error)
            for tag in tags[1:]:   # refused before any work: the others were not run
                self._counters[tag.camera].dropped.add()
            return
        except Exception as error:  # noqa: BLE001 - counted and reported, the node keeps serving
            for tag in tags:
                self._fail(tag.camera, "inference", error)
            return
        accepted = [tag for tag, refusal in zip(tags, refusals) if refusal is None]
        for tag, refusal in zip(tags, refusals):
            if refusal is not None:
                self._refuse(tag.camera, refusal)
        if accepted and workers.track(accepted):
            for _ in accepted:
                workers.submitted.release()
        else:   # accepted after its activation stopped and gave up on its frames
            for tag in accepted:
                self._counters[tag.camera].dropped.add()

    def _publish_results(self, workers: Workers) -> None:
        """Collect the oldest submitted frame and publish it; frames left when the activation
        stops count as dropped (here, or by ``_stop`` once the engine drops them)."""
        if not workers.submitted.acquire(timeout=0.1):
            return
        result = self._collect(workers)
        if result is None:
            return
        tag: FrameTag = result.tag
        workers.finished(tag)
        if workers.stopping.is_set():
            self._counters[tag.camera].dropped.add()
            return
        try:
            self._publish(result)
        except Exception as error:  # noqa: BLE001
            self._fail(tag.camera, "publish", error)

    def _collect(self, workers: Workers) -> SegmentationResult | None:
        """The oldest submitted frame's result; None when its batch failed (each of its
        frames counted as a failure of its own camera) or the engine holds nothing."""
        engine = workers.engine
        while engine.pending():
            try:
                result = engine.collect(timeout=0.1)
            except Exception as error:  # noqa: BLE001
                failed = workers.failed_batch()
                for tag in failed:
                    self._fail(tag.camera, "inference", error)
                for _ in failed[1:]:    # their tokens: the batch is gone from the engine
                    workers.submitted.acquire(blocking=False)
                return None
            if result is not None or workers.stopping.is_set():
                return result
        return None

    def _publish(self, result: SegmentationResult) -> None:
        tag: FrameTag = result.tag
        settings = self._settings
        outputs, counters = self._outputs[tag.camera], self._counters[tag.camera]
        timings = {stage: float(result.timings_ms.get(stage, 0.0)) for stage in diagnostics.STAGES}
        start = time.perf_counter()
        mask = result.class_mask if self._groups is None else self._groups.apply(result.class_mask)
        images = render(mask, self._palette, color_mask=tag.color_mask, overlay=tag.overlay,
                        rgb=result.rgb, alpha=settings.overlay_alpha,
                        confidence=result.confidence if tag.confidence else None)
        published = time.perf_counter()
        timings["colorize"] = (published - start) * 1e3
        calibration = self._calibrations[tag.camera].matching(tag.header)
        if calibration is None:
            counters.without_camera_info.add()
        outputs.publish_images(tag.header, images, calibration)
        counters.processed.add()  # only once published: a failed publish counts as a failure alone
        timings["publish"] = (time.perf_counter() - published) * 1e3
        # Plain integers: rclpy's Time refuses the negative seconds a camera with a bad clock may send.
        # A zero stamp, or a clock not started yet (use_sim_time before /clock), has no age: counted.
        stamp = tag.header.stamp
        age_s = counters.delays.add_stamp(stamp.sec * 1_000_000_000 + stamp.nanosec,
                                          self.get_clock().now().nanoseconds)
        age_ms = math.nan if age_s is None else age_s * 1e3
        now = time.monotonic()
        counters.stages.add(now, timings if age_s is None else {**timings, "age": age_ms})
        counters.batch_sizes.add(now, result.batch_size)
        if settings.publish_timing:
            outputs.publish_timing(diagnostics.timing(self._prefix, tag.header, timings, age_ms, result.batch_size))

    def _camera_label(self, camera: int) -> str:
        name = self._cameras[camera].name
        return f" from {name}" if name else ""

    def _refuse(self, camera: int, error: ImageRejected) -> None:
        counters = self._counters[camera]
        counters.refused.add(error.reason)
        if self._faults.throttle.allow(f"refused:{camera}:{error.reason}"):
            self.get_logger().warning(f"refused a frame{self._camera_label(camera)} ({error.reason}): "
                                      f"{error} [{counters.refused.by_reason()[error.reason]} so far]")

    def _fail(self, camera: int, kind: str, error: Exception) -> None:
        message = f"{kind} failed: {type(error).__name__}: {error}"
        self._counters[camera].failed(kind, message)
        if self._faults.throttle.allow(f"failed:{kind}"):
            self.get_logger().error(message)

    # ------------------------------------------------------------------ diagnostics
    def _publish_diagnostics(self) -> None:
        release_free_heap()
        engine = self._engine
        state = diagnostics.NodeState(self._state, self._model,
                                      engine.memory_stats() if engine is not None else None,
                                      engine.pending() if engine is not None else 0,
                                      model_loaded=engine is not None, faults=self._faults.counts())
        settings = self._settings
        thresholds = diagnostics.Thresholds(settings.min_output_hz, settings.stale_after_s,
                                            settings.max_output_delay_s, settings.min_output_fraction)
        stamp, now = self.get_clock().now().to_msg(), time.monotonic()
        reports = [diagnostics.report(self._prefix, stamp, now, self._active_since, counters, thresholds,
                                      state, camera.name, self._input_hint(index, now))
                   for index, (camera, counters) in enumerate(zip(self._cameras, self._counters))]
        self._diagnostics_publisher.publish(DiagnosticArray(
            header=reports[0].header, status=[status for report in reports for status in report.status]))

    def _input_hint(self, camera: int, now: float) -> str:
        """Why a matched publisher delivers nothing on ``camera``'s input ('' if frames come)."""
        if self._active_since is None or camera >= len(self._inputs):
            return ""
        last = self._counters[camera].last_input
        subscription = self._inputs[camera]
        return self._input_watches[camera].hint(now, subscription.topic_name, publisher_count(self, subscription),
                                                last if last is not None and last >= self._active_since else None,
                                                self._settings.stale_after_s)
