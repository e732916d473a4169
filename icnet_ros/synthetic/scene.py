"""The street scene model and its rendering: planar polygons in metres, a pinhole camera, painter's order.

A :class:`StreetScene` is a set of :class:`Thing` (each a list of coloured, labelled
:class:`Part` polygons) drawn far to near at any image size; this module also holds the
shapes the scene builders of :mod:`street_scenes` are made of (boxes, rectangles, rings).
Class ids are Cityscapes trainIds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache, cached_property

import cv2
import numpy as np

from icnet_ros.weights.labels import IGNORE_LABEL

(ROAD, SIDEWALK, BUILDING, WALL, FENCE, POLE, TRAFFIC_LIGHT, TRAFFIC_SIGN, VEGETATION, TERRAIN,
 SKY, PERSON, RIDER, CAR, TRUCK, BUS, TRAIN, MOTORCYCLE, BICYCLE) = range(19)

STREET_LENGTH = 360.0  # metres of street ahead of z = 0
SKYLINE_Z = 380.0
MAX_CAMERA_Z = STREET_LENGTH - 200.0  # how far a camera may drive down the street
NEAR_PLANE = 0.5  # metres; nearer geometry is clipped
CORRIDOR = 2.6  # metres either side of the camera's path kept free of standing objects
SHIFT = 4  # sub-pixel bits for cv2 drawing
# Relative amplitude of per-pixel texture, by trainId (grass and leaves are the roughest).
TEXTURE = np.zeros(256, np.float32)
TEXTURE[[ROAD, SIDEWALK, BUILDING, WALL, FENCE, TERRAIN, VEGETATION, SKY]] = (
    0.07, 0.06, 0.05, 0.06, 0.05, 0.16, 0.22, 0.01)
TEXTURE[[POLE, TRAFFIC_LIGHT, TRAFFIC_SIGN, PERSON, RIDER, CAR, TRUCK, BUS, MOTORCYCLE, BICYCLE]] = 0.03

Color = tuple[float, float, float]


@dataclass
class Part:
    """Planar polygons (each an (N, 3) array of world points) of one label and colour."""

    label: int
    color: Color
    polygons: list[np.ndarray]


@dataclass
class Thing:
    """An object: parts in drawing order, ``depth`` = its nearest z, ``speed`` along z (m/s)."""

    depth: float
    parts: list[Part]
    speed: float = 0.0


@dataclass
class StreetScene:
    """One street and its camera; :meth:`render` draws it from any point along the road."""

    seed: int
    horizon: float  # horizon row as a fraction of the height
    focal: float  # focal length as a fraction of the width
    camera_height: float
    camera_x: float
    camera_speed: float  # m/s along the road
    terrain: Color  # the ground beyond everything else, up to the skyline
    ground: list[Thing]  # road, sidewalks, markings: flat polygons (y = 0) in drawing order
    shadows: list[Thing]  # flat polygons darkening the ground; the colour is the factor
    backdrop: list[Thing]  # skyline and the lots beside the street (behind every street object)
    things: list[Thing]  # street objects: poles, trees, signs, vehicles, people
    sky: tuple[Color, Color]  # horizon colour, zenith colour
    exposure: float
    tint: Color
    gamma: float
    noise_sigma: float
    blur: float
    ego_vehicle: float  # bonnet height as a fraction of the image height (0: none)
    ego_color: Color = (30.0, 30.0, 34.0)
    clouds: list[tuple[float, float, float, float]] = field(default_factory=list)  # u, v, ru, rv

    @cached_property
    def _batches(self) -> tuple[_Batch, _Batch, _Batch, _Batch]:
        return _Batch(self.ground), _Batch(self.shadows), _Batch(self.backdrop), _Batch(self.things)

    @property
    def duration(self) -> float:
        """Seconds the camera can drive down the street."""
        return MAX_CAMERA_Z / self.camera_speed

    def render(self, height: int = 256, width: int = 512, time: float = 0.0,
               noise_seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """RGB uint8 (H, W, 3) and trainId uint8 (H, W) at ``time`` seconds of the drive.

        The camera moves at ``camera_speed``, vehicles at their own speeds. ``noise_seed``
        varies only the texture and sensor noise (e.g. the frame number of a sequence).
        """
        if height < 8 or width < 8:
            raise ValueError(f"image size must be at least 8x8, got {height}x{width}")
        if not 0.0 <= time <= self.duration:
            raise ValueError(f"time must be within 0..{self.duration:.1f} s for this street, got {time}")
        camera_z = self.camera_speed * time
        view = _View(height, width, self.horizon * height, self.focal * width, self.camera_height,
                     self.camera_x, camera_z)
        ground, shadows, backdrop, things = self._batches
        image = np.empty((height, width, 3), np.float32)
        label = np.full((height, width), SKY, np.uint8)
        _draw_sky(image, view, self)
        skyline = int(np.ceil(view.cy + view.focal * self.camera_height / (SKYLINE_Z - camera_z)))
        image[skyline:], label[skyline:] = self.terrain, TERRAIN
        for class_id, color, polygons in ground.project(view, time, in_order=True):
            _fill(image, label, polygons, color, class_id)
        shade = np.ones((height, width), np.float32)
        for _, color, polygons in shadows.project(view, time, in_order=True):
            cv2.fillPoly(shade, polygons, color[0], cv2.LINE_AA, SHIFT)
        image *= shade[..., None]
        for batch in (backdrop, things):
            for class_id, color, polygons in batch.project(view, time):
                _fill(image, label, polygons, color, class_id)
        if self.ego_vehicle > 0:
            _draw_bonnet(image, label, self.ego_vehicle, self.ego_color)
        return _finish(image, label, self, np.random.default_rng([self.seed, noise_seed, 7])), label


@dataclass(frozen=True)
class _View:
    height: int
    width: int
    cy: float
    focal: float
    camera_height: float
    camera_x: float
    camera_z: float

    def project(self, points: np.ndarray) -> np.ndarray:
        """World points (N, 3) in front of the camera -> fixed-point pixels for cv2."""
        depth = points[:, 2] - self.camera_z
        u = self.width / 2 + self.focal * (points[:, 0] - self.camera_x) / depth
        v = self.cy + self.focal * (self.camera_height - points[:, 1]) / depth
        limit = 64.0 * max(self.width, self.height)  # keeps fixed-point values in int32
        return (np.clip(np.stack([u, v], 1), -limit, limit) * (1 << SHIFT)).round().astype(np.int32)


class _Batch:
    """Things flattened so that a frame moves and projects all their points at once."""

    def __init__(self, things: list[Thing]) -> None:
        polygons = [polygon for thing in things for part in thing.parts for polygon in part.polygons]
        self.vertices = np.concatenate(polygons) if polygons else np.zeros((0, 3))
        self.bounds = np.concatenate([[0], np.cumsum([len(p) for p in polygons])]).astype(int).tolist()
        self.min_z = np.array([p[:, 2].min() for p in polygons])
        self.depth = np.array([thing.depth for thing in things])
        self.speed = np.array([thing.speed for thing in things])
        self.vertex_counts = [sum(len(p) for part in t.parts for p in part.polygons) for t in things]
        self.polygon_counts = [sum(len(part.polygons) for part in t.parts) for t in things]
        self.parts: list[list[tuple[int, Color, int, int]]] = []  # per thing: label, colour, polygon range
        first = 0
        for thing in things:
            self.parts.append([])
            for part in thing.parts:
                self.parts[-1].append((part.label, part.color, first, first + len(part.polygons)))
                first += len(part.polygons)

    def project(self, view: _View, time: float,
                in_order: bool = False) -> list[tuple[int, Color, list[np.ndarray]]]:
        """(label, colour, pixel polygons) per part, far things first unless ``in_order``."""
        shift = self.speed * time
        vertices = self.vertices.copy()
        vertices[:, 2] += np.repeat(shift, self.vertex_counts)
        near = view.camera_z + NEAR_PLANE
        with np.errstate(divide="ignore", invalid="ignore"):
            pixels = view.project(vertices)
        clipped = (self.min_z + np.repeat(shift, self.polygon_counts) < near).tolist()
        order = range(len(self.parts)) if in_order else np.argsort(-(self.depth + shift), kind="stable")
        bounds, result = self.bounds, []
        for index in order:
            for class_id, color, first, last in self.parts[index]:
                polygons = []
                for i in range(first, last):
                    if not clipped[i]:
                        polygons.append(pixels[bounds[i]:bounds[i + 1]])
                        continue
                    kept = _clip_near(vertices[bounds[i]:bounds[i + 1]], near)
                    if len(kept) >= 3:
                        polygons.append(view.project(kept))
                result.append((class_id, color, polygons))
        return result


def _clip_near(polygon: np.ndarray, near: float) -> np.ndarray:
    """The part of a planar polygon at z >= near (Sutherland-Hodgman, one plane)."""
    kept = []
    for a, b in zip(polygon, np.roll(polygon, -1, axis=0)):
        if a[2] >= near:
            kept.append(a)
        if (a[2] >= near) != (b[2] >= near):
            kept.append(a + (b - a) * (near - a[2]) / (b[2] - a[2]))
    return np.array(kept).reshape(-1, 3)


def ground_rect(x0: float, x1: float, z0: float, z1: float) -> np.ndarray:
    return np.array([[x0, 0, z0], [x1, 0, z0], [x1, 0, z1], [x0, 0, z1]], np.float64)


def _fill(image: np.ndarray, label: np.ndarray, polygons: list[np.ndarray], color: Color,
          class_id: int) -> None:
    if not polygons:
        return
    cv2.fillPoly(image, polygons, color, cv2.LINE_AA, SHIFT)
    cv2.fillPoly(label, polygons, int(class_id), cv2.LINE_8, SHIFT)


def _draw_sky(image: np.ndarray, view: _View, scene: StreetScene) -> None:
    rows = np.arange(view.height, dtype=np.float32)[:, None]
    t = np.clip(1.0 - rows / max(view.cy, 1.0), 0.0, 1.0) ** 0.7
    low, high = np.asarray(scene.sky[0], np.float32), np.asarray(scene.sky[1], np.float32)
    image[:] = (low + (high - low) * t)[:, None, :]
    for u, v, ru, rv in scene.clouds:
        center = (int(u * view.width), int(v * view.cy))
        axes = (max(1, int(ru * view.width)), max(1, int(rv * view.cy)))
        cv2.ellipse(image, center, axes, 0, 0, 360, (228.0, 230.0, 235.0), -1, cv2.LINE_AA)


def _draw_bonnet(image: np.ndarray, label: np.ndarray, fraction: float, color: Color) -> None:
    height, width = label.shape
    top = height * (1.0 - fraction)
    u = np.linspace(0, width, 17)
    v = top + (height - top) * 0.6 * ((2 * u / width - 1) ** 2)
    points = np.concatenate([np.stack([u, v], 1), [[width, height + 1], [0, height + 1]]])
    polygon = [(points * (1 << SHIFT)).round().astype(np.int32)]
    cv2.fillPoly(image, polygon, color, cv2.LINE_AA, SHIFT)
    cv2.fillPoly(label, polygon, IGNORE_LABEL, cv2.LINE_8, SHIFT)


def _finish(image: np.ndarray, label: np.ndarray, scene: StreetScene, rng: np.random.Generator) -> np.ndarray:
    """Texture, exposure, colour cast, gamma, blur and sensor noise -> uint8."""
    height, width = label.shape
    coarse = cv2.resize(rng.standard_normal((6, 12), dtype=np.float32), (width, height),
                        interpolation=cv2.INTER_CUBIC)
    fine = rng.standard_normal((height, width), dtype=np.float32)
    image *= (1.0 + 0.05 * coarse + TEXTURE[label] * fine)[..., None]
    levels = np.arange(256, dtype=np.float64)[:, None] * scene.exposure * np.asarray(scene.tint)
    tone = (255.0 * (np.minimum(levels, 255.0) / 255.0) ** scene.gamma).round().astype(np.uint8)
    image = cv2.LUT(np.clip(image, 0, 255).astype(np.uint8), tone.reshape(256, 1, 3))
    if scene.blur > 0:
        image = cv2.GaussianBlur(image, (0, 0), scene.blur)
    noise = scene.noise_sigma * rng.standard_normal((height, width), dtype=np.float32)
    return cv2.add(image, cv2.merge([noise, noise, noise]), dtype=cv2.CV_8U)


# ----------------------------------------------------------------------------- building blocks

def shade(color: Color, factor: float) -> Color:
    return tuple(float(min(255.0, c * factor)) for c in color)


def jitter(rng: np.random.Generator, color: Color, amount: float = 18.0) -> Color:
    return tuple(min(255.0, max(0.0, c + d)) for c, d in zip(color, rng.uniform(-amount, amount, 3).tolist()))


def rect_x(x0: float, x1: float, y0: float, y1: float, z: float) -> np.ndarray:
    """Upright rectangle facing the camera (plane z = const)."""
    return np.array([[x0, y0, z], [x1, y0, z], [x1, y1, z], [x0, y1, z]], np.float64)


def rect_z(x: float, z0: float, z1: float, y0: float, y1: float) -> np.ndarray:
    """Upright rectangle along the road (plane x = const)."""
    return np.array([[x, y0, z0], [x, y0, z1], [x, y1, z1], [x, y1, z0]], np.float64)


def ellipse_x(x: float, y: float, z: float, rx: float, ry: float, n: int = 14) -> np.ndarray:
    """Ellipse in a plane facing the camera."""
    return np.array([x, y, z]) + unit_circle(n) * np.array([rx, ry, 0.0])


@cache
def unit_circle(n: int) -> np.ndarray:
    a = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.stack([np.cos(a), np.sin(a), np.zeros(n)], axis=1)


def ring_x(x: float, y: float, z: float, radius: float, thickness: float, n: int = 16) -> list[np.ndarray]:
    """A ring (wheel) facing the camera, as quads between two circles."""
    a = np.linspace(0, 2 * np.pi, n + 1)
    outer = np.stack([x + radius * np.cos(a), y + radius * np.sin(a)], 1)
    inner = np.stack([x + (radius - thickness) * np.cos(a), y + (radius - thickness) * np.sin(a)], 1)
    return [np.array([[*outer[i], z], [*outer[i + 1], z], [*inner[i + 1], z], [*inner[i], z]])
            for i in range(n)]


def bar_x(p: tuple[float, float], q: tuple[float, float], z: float, thickness: float) -> np.ndarray:
    """A thin bar between two points in a plane facing the camera (bicycle frames)."""
    d = np.array([q[0] - p[0], q[1] - p[1]])
    n = np.array([-d[1], d[0]]) / (np.linalg.norm(d) + 1e-9) * thickness / 2
    return np.array([[p[0] + n[0], p[1] + n[1], z], [q[0] + n[0], q[1] + n[1], z],
                     [q[0] - n[0], q[1] - n[1], z], [p[0] - n[0], p[1] - n[1], z]])


def box(x0: float, x1: float, y0: float, y1: float, z0: float, z1: float, color: Color,
         class_id: int, side_x: float) -> list[Part]:
    """A box seen from a camera at lateral position ``side_x``: side face, then front face."""
    parts = []
    if side_x < x0:
        parts.append(Part(class_id, shade(color, 0.75), [rect_z(x0, z0, z1, y0, y1)]))
    elif side_x > x1:
        parts.append(Part(class_id, shade(color, 0.75), [rect_z(x1, z0, z1, y0, y1)]))
    parts.append(Part(class_id, color, [rect_x(x0, x1, y0, y1, z0)]))
    return parts


# ----------------------------------------------------------------------------- scene objects
