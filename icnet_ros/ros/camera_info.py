"""The camera's calibration beside the masks.

The masks come back at the camera's resolution with the image's header, so the camera's
``CameraInfo`` applies to them unchanged. Consumers find an image's calibration by
image_transport's ``getCameraInfoTopic``: the image topic's last name replaced by
``camera_info`` (``/cam/image_raw`` -> ``/cam/camera_info``). The node subscribes to the
input's (after remapping) and keeps the last few messages by stamp; with the images of
each frame it publishes, on ``segmentation/camera_info`` beside them, the one whose stamp
equals the frame's, re-headed with the frame's header, or counts the frame as without
calibration. A mask is never paired with the calibration of another stamp.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from sensor_msgs.msg import CameraInfo
from std_msgs.msg import Header

NAME = "camera_info"   # image_transport's name for the calibration beside an image
TOPIC = NAME           # the output's, beside the images in the camera's output namespace
KEEP = 32   # calibrations kept: frames in flight stay well below this at any camera rate
SUBSCRIPTION_DEPTH = 10


def camera_info_topic(image_topic: str) -> str:
    """The camera_info topic of ``image_topic``, by image_transport's ``getCameraInfoTopic``:
    every name but the last, then ``camera_info``, always absolute (pass a resolved name)."""
    names = [name for name in image_topic.split("/")[:-1] if name]
    return "/" + "/".join([*names, NAME])


class CalibrationsByStamp:
    """The last ``keep`` CameraInfo messages of one camera, looked up by exact stamp.

    ``put`` runs in the subscription callback, ``matching`` in the publisher thread.
    """

    def __init__(self, keep: int = KEEP) -> None:
        self._lock = threading.Lock()
        self._keep = keep
        self._by_stamp: OrderedDict[tuple[int, int], CameraInfo] = OrderedDict()

    def put(self, msg: CameraInfo) -> None:
        key = (msg.header.stamp.sec, msg.header.stamp.nanosec)
        with self._lock:
            self._by_stamp[key] = msg
            self._by_stamp.move_to_end(key)
            while len(self._by_stamp) > self._keep:
                self._by_stamp.popitem(last=False)

    def matching(self, header: Header) -> CameraInfo | None:
        """The calibration stamped like ``header``, re-headed with it; None if none came."""
        with self._lock:
            msg = self._by_stamp.get((header.stamp.sec, header.stamp.nanosec))
        if msg is None:
            return None
        return CameraInfo(header=header, height=msg.height, width=msg.width,
                          distortion_model=msg.distortion_model, d=msg.d, k=msg.k, r=msg.r, p=msg.p,
                          binning_x=msg.binning_x, binning_y=msg.binning_y, roi=msg.roi)

    def clear(self) -> None:
        with self._lock:
            self._by_stamp.clear()
