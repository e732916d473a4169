"""Procedural street scenes labelled in Cityscapes trainIds.

A scene is a small 3-D street (metres; X right, Y up, Z ahead of the camera): a road
with lanes and markings, sidewalks, a row of lots on each side (buildings with windows,
walls, fences, vegetation, terrain), street lights, signs and traffic lights on thin
poles, trees, parked and moving cars, trucks and buses, pedestrians and riders on
bicycles or motorcycles, a distant skyline and the sky. Every object is a set of planar
polygons, so a pinhole projection draws it exactly at any image size, and painter's
order (far to near) resolves occlusion. Lighting (sun side, shadows, exposure, colour
cast, gamma), texture and sensor noise vary per scene.

Labels are Cityscapes trainIds 0..18 (no train class is drawn); the ego vehicle's bonnet,
when present, is 255 (void), as in Cityscapes. Poles (about 0.15 m wide), bicycle frames
and lane markings (labelled road, as in Cityscapes) are a few pixels wide or less at
256x512: only ICNet's full-resolution branch resolves them.

Everything is drawn from ``numpy.random.default_rng(seed)``: the same seed gives the same
scene (and the same pixels for the same size and ``noise_seed``) on every machine.

API: :func:`generate_scene` for one frame; :func:`generate_sequence` (or
:func:`sample_scene` plus :meth:`StreetScene.render` at any ``time``) for a camera driving
down one street among moving traffic; :class:`SyntheticScenes`, a dataset of frames.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from icnet_ros.synthetic.scene import (  # noqa: F401 - the class ids are this module's API too
    BICYCLE,
    BUILDING,
    BUS,
    CAR,
    CORRIDOR,
    FENCE,
    MOTORCYCLE,
    PERSON,
    POLE,
    RIDER,
    ROAD,
    SIDEWALK,
    SKY,
    SKYLINE_Z,
    STREET_LENGTH,
    TERRAIN,
    TRAFFIC_LIGHT,
    TRAFFIC_SIGN,
    TRAIN,
    TRUCK,
    VEGETATION,
    WALL,
    Part,
    StreetScene,
    Thing,
    bar_x,
    box,
    ellipse_x,
    ground_rect,
    jitter,
    rect_x,
    rect_z,
    ring_x,
    shade,
)


def _building(rng, side: int, x_face: float, z0: float, z1: float, light: float) -> tuple[Thing, float]:
    """A building whose street façade is the plane x = x_face; returns it and its height."""
    height = rng.uniform(6.0, 28.0)
    base = jitter(rng, [(150, 140, 125), (120, 115, 110), (170, 160, 150), (140, 100, 80),
                         (95, 95, 105)][rng.integers(5)], 20)
    face = shade(base, light)
    parts = [Part(BUILDING, shade(base, 0.8), [rect_x(x_face, x_face + side * 30.0, 0, height, z0)]),
             Part(BUILDING, face, [rect_z(x_face, z0, z1, 0, height)])]
    floor, spacing = rng.uniform(2.8, 3.6), rng.uniform(2.2, 3.5)
    window_w, window_h = spacing * rng.uniform(0.35, 0.6), floor * rng.uniform(0.35, 0.55)
    ys = np.arange(floor * 0.9, height - floor * 0.6, floor)
    zs = np.arange(z0 + spacing * 0.6, z1 - window_w, spacing)
    if len(ys) and len(zs):  # a grid of windows: (rows * columns, 4 corners, xyz)
        y, z = (a.reshape(-1, 1) for a in np.meshgrid(ys, zs, indexing="ij"))
        corners = np.stack([np.full((len(y), 4), x_face),
                            y + np.array([0, 0, window_h, window_h]),
                            z + np.array([0, window_w, window_w, 0])], axis=2)
        parts.append(Part(BUILDING, shade(jitter(rng, (60, 70, 85), 15), light), list(corners)))
    if rng.random() < 0.5:  # shop front at street level
        parts.append(Part(BUILDING, shade(jitter(rng, (70, 60, 55), 25), light),
                          [rect_z(x_face, z0 + 0.5, z1 - 0.5, 0.3, min(2.6, height - 0.5))]))
    return Thing(z0, parts), height


def _greenery(rng, x_face: float, z0: float, z1: float, light: float) -> Thing:
    """A hedge or a wood along a lot: an uneven vegetation wall."""
    top = rng.uniform(1.5, 12.0)
    zs = np.linspace(z0, z1, max(3, int((z1 - z0) / 1.5)))
    tops = top * (1 + 0.25 * rng.standard_normal(len(zs)))
    outline = np.concatenate([np.stack([np.full(len(zs), x_face), np.zeros(len(zs)), zs], 1)[::-1],
                              np.stack([np.full(len(zs), x_face), np.maximum(tops, 0.8), zs], 1)])
    color = shade(jitter(rng, (75, 110, 45), 18), light)
    return Thing(z0, [Part(VEGETATION, color, [outline])])


def _barrier(rng, x: float, z0: float, z1: float, light: float) -> Thing:
    """A wall or a fence (with a lattice of darker bars) in front of a lot."""
    if rng.random() < 0.5:
        color = shade(jitter(rng, (150, 145, 135), 20), light)
        return Thing(z0, [Part(WALL, color, [rect_z(x, z0, z1, 0, rng.uniform(1.0, 2.5))])])
    height = rng.uniform(1.0, 2.0)
    color = shade(jitter(rng, (140, 125, 110), 25), light)
    bars = [rect_z(x, z, z + 0.08, 0, height) for z in np.arange(z0, z1, rng.uniform(0.6, 1.5))]
    rails = [rect_z(x, z0, z1, y, y + 0.07) for y in (0.15, height - 0.1)]
    return Thing(z0, [Part(FENCE, shade(color, 0.9), [rect_z(x, z0, z1, 0, height)]),
                      Part(FENCE, shade(color, 0.55), bars + rails)])


def _tree(rng, x: float, z: float) -> Thing:
    trunk_h, radius = rng.uniform(2.0, 3.5), rng.uniform(1.2, 2.8)
    green = jitter(rng, (80, 115, 45), 20)
    crowns = [ellipse_x(x + rng.uniform(-0.6, 0.6) * radius, trunk_h + radius * rng.uniform(0.6, 1.2),
                         z, radius * rng.uniform(0.7, 1.0), radius * rng.uniform(0.7, 1.0)) for _ in range(3)]
    return Thing(z, [Part(VEGETATION, (90.0, 70.0, 50.0), [rect_x(x - 0.12, x + 0.12, 0, trunk_h + 0.5, z)]),
                     Part(VEGETATION, green, crowns[:2]), Part(VEGETATION, shade(green, 0.8), crowns[2:])])


def _street_light(rng, x: float, z: float, side: int) -> Thing:
    height, w = rng.uniform(6.0, 9.0), rng.uniform(0.12, 0.2)
    grey = jitter(rng, (125, 125, 130), 15)
    arm = rng.uniform(1.0, 2.5)
    polygons = [rect_x(x - w / 2, x + w / 2, 0, height, z),
                rect_x(min(x, x - side * arm), max(x, x - side * arm), height - 0.1, height, z)]
    lamp = rect_x(x - side * arm - 0.3, x - side * arm + 0.3, height - 0.25, height - 0.05, z)
    return Thing(z, [Part(POLE, grey, polygons + [lamp])])


def _sign(rng, x: float, z: float) -> Thing:
    top = rng.uniform(2.2, 3.0)
    kind = rng.integers(3)
    parts = [Part(POLE, jitter(rng, (130, 130, 135), 15), [rect_x(x - 0.05, x + 0.05, 0, top, z)])]
    cy, r = top + 0.3, 0.32
    if kind == 0:  # round prohibition sign: red ring, white face
        parts += [Part(TRAFFIC_SIGN, (200.0, 30.0, 35.0), [ellipse_x(x, cy, z, r, r, 16)]),
                  Part(TRAFFIC_SIGN, (235.0, 235.0, 235.0), [ellipse_x(x, cy, z, r * 0.72, r * 0.72, 16)])]
    elif kind == 1:  # warning triangle
        tri = np.array([[x - r, cy - r * 0.8, z], [x + r, cy - r * 0.8, z], [x, cy + r, z]])
        parts.append(Part(TRAFFIC_SIGN, (210.0, 180.0, 40.0), [tri]))
    else:  # blue information panel
        parts.append(Part(TRAFFIC_SIGN, (30.0, 80.0, 170.0), [rect_x(x - r, x + r, cy - r, cy + r, z)]))
    return Thing(z, parts)


def _traffic_light(rng, x: float, z: float, side: int) -> Thing:
    pole_h = rng.uniform(3.0, 4.5)
    parts = [Part(POLE, jitter(rng, (90, 95, 95), 15), [rect_x(x - 0.07, x + 0.07, 0, pole_h, z)])]
    bx = x
    if rng.random() < 0.4:  # on an arm over the road
        reach = rng.uniform(2.5, 5.0)
        bx = x - side * reach
        parts[0].polygons.append(rect_x(min(x, bx), max(x, bx), pole_h - 0.12, pole_h, z))
    parts.append(Part(TRAFFIC_LIGHT, (35.0, 35.0, 35.0), [rect_x(bx - 0.18, bx + 0.18, pole_h - 1.0, pole_h, z)]))
    lit = rng.integers(3)
    for i, color in enumerate(((220.0, 40.0, 30.0), (230.0, 170.0, 30.0), (40.0, 210.0, 90.0))):
        cy = pole_h - 0.2 - 0.3 * i
        parts.append(Part(TRAFFIC_LIGHT, color if i == lit else shade(color, 0.3), [ellipse_x(bx, cy, z, 0.1, 0.1, 10)]))
    return Thing(z, parts)


def _vehicle(rng, kind: int, x: float, z: float, camera_x: float, facing_us: bool) -> Thing:
    if kind == CAR:
        w, h, length = rng.uniform(1.65, 1.9), rng.uniform(1.35, 1.6), rng.uniform(3.9, 4.8)
        color = jitter(rng, [(180, 20, 25), (30, 40, 120), (200, 200, 205), (25, 25, 28), (120, 125, 130),
                              (40, 90, 50)][rng.integers(6)], 20)
    elif kind == TRUCK:
        w, h, length = rng.uniform(2.3, 2.55), rng.uniform(3.0, 3.9), rng.uniform(6.5, 10.0)
        color = jitter(rng, [(220, 220, 215), (170, 60, 30), (60, 80, 110)][rng.integers(3)], 20)
    else:
        w, h, length = 2.5, rng.uniform(3.0, 3.3), rng.uniform(10.0, 12.5)
        color = jitter(rng, [(200, 180, 40), (200, 40, 40), (60, 110, 170)][rng.integers(3)], 15)
    x0, x1 = x - w / 2, x + w / 2
    body_top = h * (0.6 if kind == CAR else 0.92)
    parts = box(x0, x1, 0.25, body_top, z, z + length, color, kind, camera_x)
    if kind == CAR:  # cabin, narrower, with dark glass
        parts += box(x0 + 0.12, x1 - 0.12, body_top, h, z + 0.9, z + length - 1.2, shade(color, 0.9), kind, camera_x)
        parts.append(Part(kind, (45.0, 55.0, 65.0), [rect_x(x0 + 0.22, x1 - 0.22, body_top + 0.05, h - 0.08, z + 0.9)]))
    else:
        parts.append(Part(kind, (45.0, 55.0, 65.0), [rect_x(x0 + 0.15, x1 - 0.15, h * 0.55, h * 0.85, z)]))
    lamp = (240.0, 240.0, 220.0) if facing_us else (200.0, 20.0, 20.0)
    parts.append(Part(kind, lamp, [rect_x(x0 + 0.08, x0 + 0.35, 0.6, 0.8, z), rect_x(x1 - 0.35, x1 - 0.08, 0.6, 0.8, z)]))
    parts.append(Part(kind, (20.0, 20.0, 20.0), [rect_x(x0 + 0.05, x0 + 0.4, 0, 0.45, z),
                                               rect_x(x1 - 0.4, x1 - 0.05, 0, 0.45, z)]))
    return Thing(z, parts)


def _person(rng, x: float, z: float, class_id: int = PERSON, base_y: float = 0.0, seated: bool = False) -> list[Part]:
    h = rng.uniform(1.55, 1.9)
    clothes = jitter(rng, [(40, 50, 90), (120, 30, 30), (60, 60, 60), (200, 190, 170), (30, 90, 60)][rng.integers(5)], 20)
    trousers = jitter(rng, (45, 45, 60), 20)
    skin = jitter(rng, (200, 160, 130), 30)
    hw = rng.uniform(0.2, 0.27)
    legs = 0.0 if seated else h * 0.47
    y0 = base_y
    parts = []
    if not seated:
        parts.append(Part(class_id, trousers, [rect_x(x - hw * 0.9, x - 0.03, y0, y0 + legs, z),
                                               rect_x(x + 0.03, x + hw * 0.9, y0, y0 + legs, z)]))
    torso_top = y0 + legs + h * 0.33
    parts.append(Part(class_id, clothes, [rect_x(x - hw, x + hw, y0 + legs, torso_top, z),
                                          rect_x(x - hw - 0.09, x - hw, y0 + legs + 0.1, torso_top - 0.03, z),
                                          rect_x(x + hw, x + hw + 0.09, y0 + legs + 0.1, torso_top - 0.03, z)]))
    parts.append(Part(class_id, skin, [ellipse_x(x, torso_top + 0.13, z, 0.1, 0.13, 10)]))
    return parts


def _pedestrian(rng, x: float, z: float) -> Thing:
    return Thing(z, _person(rng, x, z))


def _rider(rng, x: float, z: float) -> Thing:
    """A rider on a bicycle or motorcycle seen from the side (crossing or riding by)."""
    motor = rng.random() < 0.3
    kind = MOTORCYCLE if motor else BICYCLE
    r = 0.32 if motor else rng.uniform(0.3, 0.36)
    base = 0.7 if motor else 0.55
    frame = jitter(rng, (30, 30, 35) if motor else (150, 30, 40), 25)
    rear, front = (x - 0.55, r), (x + 0.55, r)
    wheels = ring_x(*rear, z, r, 0.07 if motor else 0.04) + ring_x(*front, z, r, 0.07 if motor else 0.04)
    seat, bar = (x - 0.15, r + base), (x + 0.4, r + base + 0.1)
    bars = [bar_x(rear, seat, z, 0.04), bar_x(seat, bar, z, 0.04), bar_x(bar, front, z, 0.04),
            bar_x(rear, (x, r), z, 0.04), bar_x((x, r), seat, z, 0.04), bar_x((x, r), bar, z, 0.04)]
    parts = [Part(kind, (25.0, 25.0, 25.0), wheels), Part(kind, frame, bars)]
    if motor:
        parts.append(Part(kind, frame, [ellipse_x(x, r + 0.35, z, 0.45, 0.22, 12)]))
    parts += _person(rng, x - 0.05, z - 0.01, RIDER, base_y=r + base - 0.05, seated=True)
    parts.append(Part(RIDER, jitter(rng, (45, 45, 60), 20), [bar_x((x - 0.1, r + base), (x + 0.15, r + 0.3), z - 0.01, 0.13)]))
    return Thing(z - 0.01, parts)


# ----------------------------------------------------------------------------- scene sampling

def sample_scene(seed: int) -> StreetScene:
    """The street of ``seed``: layout, objects, camera and lighting (no pixels yet)."""
    rng = np.random.default_rng(seed)
    lane = rng.uniform(2.9, 3.6)
    lanes_left, lanes_right = int(rng.integers(1, 3)), int(rng.integers(1, 3))
    road_left, road_right = -lane * lanes_left, lane * lanes_right
    walk_left, walk_right = rng.uniform(2.0, 5.0), rng.uniform(2.0, 5.0)
    camera_x = lane * (rng.integers(0, lanes_right) + 0.5) + rng.uniform(-0.4, 0.4)
    sun = rng.uniform(0.55, 1.15, 2)  # brightness of the façades facing right (left side) and left
    asphalt = jitter(rng, (95, 95, 100), 15)
    paving = jitter(rng, (160, 150, 145), 20)
    grass = jitter(rng, (110, 140, 70), 20)
    paint = (235.0, 235.0, 230.0) if rng.random() < 0.8 else (230.0, 190.0, 60.0)
    end = STREET_LENGTH
    curbs = [ground_rect(road_left - 0.2, road_left, 0.0, end), ground_rect(road_right, road_right + 0.2, 0.0, end)]
    ground = [Part(SIDEWALK, paving, [ground_rect(road_left - walk_left, road_left, 0.0, end),
                                      ground_rect(road_right, road_right + walk_right, 0.0, end)]),
              Part(ROAD, asphalt, [ground_rect(road_left, road_right, 0.0, end)]),
              Part(SIDEWALK, shade(paving, 1.15), curbs)]
    dash, gap, width = rng.uniform(2.5, 4.0), rng.uniform(4.0, 8.0), rng.uniform(0.1, 0.16)
    markings = [ground_rect(edge - width / 2, edge + width / 2, 0.0, end)
                for edge in (road_left + 0.3, road_right - 0.3)]
    for boundary in np.arange(road_left + lane, road_right - 0.1, lane):
        if abs(boundary) < 0.1 and rng.random() < 0.4:  # solid centre line
            markings.append(ground_rect(boundary - width / 2, boundary + width / 2, 0.0, end))
            continue
        for z in np.arange(rng.uniform(0, gap), end, dash + gap):
            markings.append(ground_rect(boundary - width / 2, boundary + width / 2, z, z + dash))
    for z in rng.uniform(15.0, 120.0, int(rng.integers(0, 3))):  # zebra crossings
        markings += [ground_rect(x, x + 0.5, z, z + 3.0) for x in np.arange(road_left + 0.4, road_right - 0.4, 1.0)]
    ground.append(Part(ROAD, paint, markings))

    backdrop: list[Thing] = []
    things: list[Thing] = []
    shadows: list[Part] = []  # flat parts whose colour is a darkening factor
    for side, edge, walk in ((-1, road_left, walk_left), (1, road_right, walk_right)):
        light = sun[0] if side < 0 else sun[1]
        curb = edge + side * walk
        z = rng.uniform(-5.0, 5.0)
        while z < end:
            length = rng.uniform(8.0, 30.0)
            setback = 0.0 if rng.random() < 0.6 else rng.uniform(1.0, 6.0)
            face = curb + side * setback
            kind = rng.random()
            if kind < 0.62:
                building, height = _building(rng, side, face, z, z + length, light)
                backdrop.append(building)
                if light < 0.8:  # sun behind the building: its shadow falls across the street
                    reach = min(height * rng.uniform(0.3, 1.0), 25.0)
                    darkness = float(rng.uniform(0.55, 0.75))
                    shadows.append(Part(ROAD, (darkness,) * 3, [ground_rect(face, face - side * reach, z, z + length)]))
            elif kind < 0.85:
                backdrop.append(_greenery(rng, face, z, z + length, light))
            if setback > 0 and rng.random() < 0.5:
                backdrop.append(_barrier(rng, curb + side * 0.3, z, z + length, light))
            z += length + (rng.uniform(1.0, 8.0) if rng.random() < 0.3 else 0.0)
        spacing = rng.uniform(18.0, 40.0)
        for z in np.arange(rng.uniform(3.0, spacing), end - 20, spacing):
            things.append(_street_light(rng, edge + side * 0.5, z, side))
        if rng.random() < 0.6:
            for z in np.arange(rng.uniform(4.0, 12.0), end - 40, rng.uniform(9.0, 16.0)):
                things.append(_tree(rng, edge + side * rng.uniform(1.0, 1.8), z))
        for z in rng.uniform(6.0, 150.0, int(rng.integers(1, 5))):
            things.append(_sign(rng, edge + side * 0.45, z))
        for z in rng.uniform(10.0, 120.0, int(rng.integers(0, 3))):
            things.append(_traffic_light(rng, edge + side * 0.4, z, side))
        for z in rng.uniform(4.0, 90.0, int(rng.integers(1, 7))):
            things.append(_pedestrian(rng, edge + side * rng.uniform(0.8, walk - 0.3), z))
        parked = edge - side * 1.1
        if abs(parked - camera_x) > CORRIDOR:
            for z in rng.uniform(10.0, 120.0, int(rng.integers(0, 6))):
                things.append(_vehicle(rng, CAR, parked, z, camera_x, False))
        for z in rng.uniform(6.0, 60.0, int(rng.integers(0, 2))):  # riders waiting on the sidewalk
            things.append(_rider(rng, edge + side * rng.uniform(1.0, max(1.1, walk - 1.0)), z))

    camera_speed = rng.uniform(6.0, 14.0)
    camera_lane = int(np.floor(camera_x / lane))
    for _ in range(int(rng.integers(2, 9))):
        lane_index = int(rng.integers(-lanes_left, lanes_right))
        x = lane * (lane_index + 0.5) + rng.uniform(-0.3, 0.3)
        kind = [CAR, CAR, CAR, TRUCK, BUS][rng.integers(5)]
        vehicle = _vehicle(rng, kind, x, rng.uniform(7.0, 140.0), camera_x, lane_index < 0)
        if lane_index < 0:  # oncoming traffic
            vehicle.speed = -rng.uniform(6.0, 14.0)
        elif lane_index == camera_lane:  # traffic ahead in the camera's lane pulls away
            vehicle.speed = camera_speed + rng.uniform(0.0, 4.0)
        else:
            vehicle.speed = camera_speed * rng.uniform(0.6, 1.3)
        things.append(vehicle)
    for _ in range(int(rng.integers(0, 3))):  # riders stopped at the road edge, clear of the camera
        x = rng.uniform(road_left + 0.9, road_right - 0.9)
        if abs(x - camera_x) > CORRIDOR:
            things.append(_rider(rng, x, rng.uniform(6.0, 60.0)))
    for _ in range(int(rng.integers(25, 45))):  # skyline: distant buildings and woods
        x, w = rng.uniform(-350, 350), rng.uniform(10, 60)
        if rng.random() < 0.65:
            color = jitter(rng, (150, 150, 160), 25)
            backdrop.append(Thing(SKYLINE_Z, [Part(BUILDING, color, [rect_x(x, x + w, 0, rng.uniform(8, 70), SKYLINE_Z)])]))
        else:
            crown = ellipse_x(x, 0.0, SKYLINE_Z - 1, w / 2, rng.uniform(6, 20), 16)
            backdrop.append(Thing(SKYLINE_Z - 1, [Part(VEGETATION, jitter(rng, (85, 110, 60), 15), [crown])]))

    overcast = rng.random() < 0.35
    sky_low = jitter(rng, (200, 205, 210) if overcast else (185, 210, 235), 15)
    sky_high = jitter(rng, (170, 175, 185) if overcast else (70, 125, 200), 20)
    clouds = [(rng.uniform(0, 1), rng.uniform(0.05, 0.8), rng.uniform(0.05, 0.2), rng.uniform(0.03, 0.12))
              for _ in range(int(rng.integers(0, 6)))]
    return StreetScene(
        seed=int(seed), horizon=rng.uniform(0.36, 0.5), focal=rng.uniform(0.75, 1.1),
        camera_height=rng.uniform(1.25, 1.7), camera_x=float(camera_x), camera_speed=camera_speed,
        terrain=grass, ground=[Thing(0.0, ground)], shadows=[Thing(0.0, shadows)], backdrop=backdrop, things=things,
        sky=(sky_low, sky_high), exposure=rng.uniform(0.65, 1.25),
        tint=tuple(float(v) for v in rng.uniform(0.9, 1.1, 3)), gamma=rng.uniform(0.8, 1.25),
        noise_sigma=rng.uniform(1.0, 7.0), blur=rng.uniform(0.4, 1.0) if rng.random() < 0.3 else 0.0,
        ego_vehicle=rng.uniform(0.06, 0.14) if rng.random() < 0.5 else 0.0, clouds=clouds)


def generate_scene(seed: int, height: int = 256, width: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """One street scene: RGB uint8 (H, W, 3) and Cityscapes trainIds uint8 (H, W), 255 = void."""
    return sample_scene(seed).render(height, width)


def generate_sequence(seed: int, frames: int, fps: float = 10.0, height: int = 256,
                      width: int = 512) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``frames`` consecutive frames of a drive down the street of ``seed`` at ``fps``."""
    scene = sample_scene(seed)
    if frames < 1 or (frames - 1) / fps > scene.duration:
        raise ValueError(f"{frames} frames at {fps} fps do not fit the {scene.duration:.1f} s street of seed {seed}")
    for index in range(frames):
        yield scene.render(height, width, time=index / fps, noise_seed=index)


class SyntheticScenes:
    """A dataset of ``count`` synthetic frames: frame ``i`` is ``generate_scene(seed + i)``.

    Items are ``(rgb, label)`` numpy arrays like every dataset of :mod:`icnet_train.data`.
    Use disjoint seed ranges for training and validation sets.
    """

    def __init__(self, count: int, height: int = 256, width: int = 512, seed: int = 0) -> None:
        if count < 1:
            raise ValueError(f"a synthetic set needs at least one frame, got {count}")
        self.count, self.height, self.width, self.seed = count, height, width, seed

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        if not 0 <= index < self.count:
            raise IndexError(f"frame {index} of a {self.count}-frame set")
        return generate_scene(self.seed + index, self.height, self.width)
