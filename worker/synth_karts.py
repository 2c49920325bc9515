"""Synthetic racing scenes in the SuperTuxKart `info.json` layout (pre-training data of the demo).

SYNTHETIC, not game frames: a track seen from behind the ego kart — sky, horizon, a road drawn in
perspective towards a vanishing point, grass / snow / sand / dirt themes — with karts of distinct
colours (one colour scheme per kart name) placed at different depths (size shrinks with distance,
the far ones sit near the horizon), drawn far-to-near so near karts and clutter (trees, rocks,
item boxes, bananas) occlude far ones. Boxes are the karts' drawn extents with a small margin
(the engine's boxes are slightly loose too); karts less than 30 % visible are dropped, as in
../shared/supertuxkart. Sometimes the camera's own kart (`ego_ids`) is in view, big, at the bottom
centre. Everything is a pure function of the seed.

Written as `<gid>_info.json` + `<gid>_00_im.jpg` per frame (detections in the 600x400 course
frame, `karts`, `ego_ids`, `distance_down_track`, `velocity`, `visible`, track "synthetic-<theme>"),
so it is read by the same importer (backend.formats.supertuxkart) as the real frames.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

FRAME_W, FRAME_H = 600.0, 400.0
KARTS = {  # name -> (body colour, driver colour): distinct at a glance
    "Tux": ((30, 30, 40), (240, 200, 40)), "Gnu": ((120, 70, 30), (230, 230, 230)),
    "Puffy": ((40, 90, 200), (240, 240, 240)), "Sara": ((160, 40, 160), (250, 210, 160)),
    "Konqi": ((40, 160, 60), (230, 130, 40)), "Wilber": ((200, 120, 60), (90, 90, 90)),
    "Nolok": ((200, 30, 30), (60, 60, 60)), "Pepper": ((240, 140, 20), (200, 40, 60)),
    "Adiumy": ((120, 200, 60), (40, 40, 40)), "Gavroche": ((60, 60, 140), (230, 180, 150)),
    "Kiki": ((230, 230, 240), (240, 120, 180)), "Amanda": ((250, 230, 60), (150, 80, 40)),
    "Emule": ((90, 60, 40), (250, 250, 250)), "Xue": ((60, 200, 220), (250, 250, 250)),
    "Suzanne": ((230, 120, 160), (110, 70, 40)), "Pidgin": ((120, 120, 130), (250, 180, 30)),
}
THEMES = {  # name -> (ground, road, sky top, sky bottom)
    "grass": ((70, 140, 50), (150, 100, 55), (60, 110, 200), (170, 200, 235)),
    "snow": ((235, 240, 245), (200, 205, 215), (90, 120, 170), (200, 215, 235)),
    "sand": ((225, 200, 130), (200, 160, 90), (70, 140, 230), (190, 220, 245)),
    "dirt": ((130, 110, 70), (170, 110, 60), (50, 50, 90), (200, 150, 170)),
}
KART_COUNTS = (0.05, 0.45, 0.25, 0.14, 0.07, 0.04)  # 0..5 karts ahead, roughly the real frames' mix


def _jitter(rng, c, k=18):
    return tuple(int(np.clip(v + rng.integers(-k, k + 1), 0, 255)) for v in c)


def _sky(w: int, hz: int, top, bottom) -> Image.Image:
    t = np.linspace(0, 1, max(hz, 1))[:, None, None]
    arr = (np.array(top)[None, None] * (1 - t) + np.array(bottom)[None, None] * t).repeat(w, 1)
    return Image.fromarray(arr.astype(np.uint8))


def draw_kart(draw: ImageDraw.ImageDraw, cx: float, base: float, size: float, body, driver) -> tuple:
    """A kart seen from behind, bottom centre at (cx, base), width `size`; returns its extent."""
    w, h = size, size * 0.95
    x1, y1 = cx - w / 2, base - h
    wheel = body if isinstance(body, int) else (25, 25, 25)  # an int: drawing into a mask
    draw.rectangle((x1, base - h * 0.30, x1 + w * 0.22, base), fill=wheel)  # rear wheels
    draw.rectangle((x1 + w * 0.78, base - h * 0.30, x1 + w, base), fill=wheel)
    draw.rounded_rectangle((x1 + w * 0.12, base - h * 0.55, x1 + w * 0.88, base - h * 0.08),
                           radius=max(1, w * 0.08), fill=body)  # body
    draw.rectangle((x1 + w * 0.30, base - h * 0.62, x1 + w * 0.70, base - h * 0.50), fill=body)  # seat back
    draw.ellipse((cx - w * 0.22, y1, cx + w * 0.22, base - h * 0.50), fill=driver)  # driver
    return x1, y1, x1 + w, base


def _clutter(draw, rng, kind: str, cx: float, base: float, size: float) -> None:
    if kind == "tree":
        draw.rectangle((cx - size * 0.08, base - size * 0.6, cx + size * 0.08, base), fill=(90, 60, 30))
        draw.polygon([(cx, base - size * 1.8), (cx - size * 0.5, base - size * 0.5),
                      (cx + size * 0.5, base - size * 0.5)], fill=_jitter(rng, (30, 100, 40)))
    elif kind == "rock":
        draw.ellipse((cx - size * 0.6, base - size * 0.7, cx + size * 0.6, base), fill=_jitter(rng, (120, 115, 110)))
    elif kind == "item":  # item boxes: small blue cubes on the road
        s = size * 0.35
        draw.rectangle((cx - s, base - 2 * s, cx + s, base), fill=(60, 150, 240), outline=(230, 240, 255))
    else:  # banana
        draw.ellipse((cx - size * 0.5, base - size * 0.3, cx + size * 0.5, base), fill=(245, 215, 40))


def render_scene(rng: np.random.Generator, size: tuple[int, int] = (300, 200)) -> tuple[Image.Image, dict]:
    """One frame and its info dict (boxes in the 600x400 frame)."""
    w, h = size
    theme = list(THEMES)[int(rng.integers(len(THEMES)))]
    ground, road, sky_top, sky_bot = (_jitter(rng, c) for c in THEMES[theme])
    hz = int(h * rng.uniform(0.30, 0.50))  # horizon
    vx = w * rng.uniform(0.3, 0.7)  # vanishing point: the road bends left or right
    img = Image.new("RGB", (w, h), ground)
    img.paste(_sky(w, hz, sky_top, sky_bot), (0, 0))
    draw = ImageDraw.Draw(img)
    for _ in range(int(rng.integers(0, 4))):  # hills / walls on the horizon
        hx, hw, hh = rng.uniform(0, w), rng.uniform(0.2, 0.6) * w, rng.uniform(0.05, 0.2) * h
        draw.polygon([(hx - hw, hz), (hx, hz - hh), (hx + hw, hz)], fill=_jitter(rng, (110, 120, 130), 40))
    half_bottom = w * rng.uniform(0.45, 0.9)
    bottom_cx = w / 2 + rng.uniform(-0.1, 0.1) * w

    def road_at(y: float) -> tuple[float, float]:  # centre x and half width of the road at row y
        t = (y - hz) / (h - hz)
        return vx + (bottom_cx - vx) * t, max(half_bottom * t, 1.0)

    draw.polygon([(vx - 1, hz), (vx + 1, hz), (bottom_cx + half_bottom, h), (bottom_cx - half_bottom, h)], fill=road)
    stripe = _jitter(rng, (235, 235, 220), 20)
    for k in range(8):  # dashed centre line, spaced by perspective
        t0, t1 = (k / 8) ** 2, ((k + 0.4) / 8) ** 2
        (c0, _), (c1, _) = road_at(hz + t0 * (h - hz)), road_at(hz + t1 * (h - hz))
        draw.line([(c0, hz + t0 * (h - hz)), (c1, hz + t1 * (h - hz))], fill=stripe, width=max(1, int(3 * t1)))

    names = list(KARTS)
    order = rng.permutation(len(names))[:8]
    karts = [names[i] for i in order]  # 8 karts race; kart 0 is the camera's (ego)
    n_ahead = int(rng.choice(len(KART_COUNTS), p=KART_COUNTS))
    # things in the scene: (depth t in (0, 1] = how far down the screen, kind, payload)
    things: list[tuple[float, str, object]] = []
    for kid in range(1, 1 + n_ahead):
        things.append((float(rng.uniform(0.06, 0.85)), "kart", kid))
    for _ in range(int(rng.integers(0, 6))):
        things.append((float(rng.uniform(0.02, 1.0)), str(rng.choice(["tree", "rock", "item", "banana"])), None))
    ego_visible = rng.random() < 0.2
    ids = np.zeros((h, w), np.int16)  # who owns each pixel: visible share by a painter's id mask
    full_area: dict[int, int] = {}
    extents: dict[int, tuple] = {}
    for t, kind, payload in sorted(things, key=lambda x: x[0]):  # far first: near ones paint over
        y = hz + t * (h - hz)
        cx, half = road_at(y)
        if kind == "kart":
            kid = int(payload)
            x = cx + rng.uniform(-0.7, 0.7) * half
            s = max(4.0, t * h * rng.uniform(0.25, 0.45))  # real karts ahead: ~5-25 % of the width
            body, driver = KARTS[karts[kid]]
            mask = Image.new("L", (w, h), 0)
            draw_kart(ImageDraw.Draw(mask), x, y, s, 255, 255)
            m = np.asarray(mask) > 0
            extents[kid] = draw_kart(draw, x, y, s, _jitter(rng, body, 10), _jitter(rng, driver, 10))
            full_area[kid] = int(m.sum())
            ids[m] = kid
        else:
            x = cx + rng.choice([-1, 1]) * half * rng.uniform(0.0 if kind in ("item", "banana") else 1.1, 1.6)
            s = max(3.0, t * h * rng.uniform(0.4, 0.9))
            mask = Image.new("RGB", (w, h), 0)
            _clutter(ImageDraw.Draw(mask), rng, kind, x, y, s)
            ids[np.asarray(mask).any(-1)] = -1
            img.paste(mask, (0, 0), Image.fromarray((np.asarray(mask).any(-1) * 255).astype(np.uint8)))
    if ego_visible:  # the camera trails its own kart: big, bottom centre, seen from behind
        s = h * rng.uniform(0.35, 0.55)
        x = w / 2 + rng.uniform(-0.05, 0.05) * w
        y = h * rng.uniform(0.97, 1.05)
        mask = Image.new("L", (w, h), 0)
        draw_kart(ImageDraw.Draw(mask), x, y, s, 255, 255)
        m = np.asarray(mask) > 0
        extents[0] = draw_kart(draw, x, y, s, *KARTS[karts[0]])
        full_area[0] = int(m.sum())
        ids[m] = 0
    img = img.filter(ImageFilter.GaussianBlur(rng.uniform(0.0, 0.8)))
    arr = np.asarray(img, np.float32) + rng.normal(0, rng.uniform(0, 6), (h, w, 3))
    img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))

    dets, visible = [], []
    sx, sy = FRAME_W / w, FRAME_H / h
    for kid, (x1, y1, x2, y2) in sorted(extents.items()):
        share = float((ids == kid).sum()) / max(full_area[kid], 1)
        x1, y1, x2, y2 = max(x1, 0), max(y1, 0), min(x2, w), min(y2, h)
        if share < 0.3 or x2 - x1 < 2 or y2 - y1 < 2:
            continue
        m = 0.06 * (x2 - x1)  # a little loose, like the engine's projected 3D boxes
        box = [max(x1 - m, 0) * sx, max(y1 - m, 0) * sy, min(x2 + m, w) * sx, min(y2 + m, h) * sy]
        dets.append([1, kid] + [round(v, 1) for v in box])
        visible.append(round(share, 2))
    # distance down the track: karts further up the screen are further ahead of the ego kart
    ego_d = float(rng.uniform(50, 500))
    ddt = [ego_d] + [ego_d + float(rng.uniform(-30, 60)) for _ in range(1, 8)]
    for t, kind, payload in things:
        if kind == "kart":
            ddt[int(payload)] = ego_d + (1.0 - t) * 40 + float(rng.uniform(0, 2))
    vel = [[round(float(v), 2) for v in rng.normal([20, -1, 10], [3, 0.5, 4])] for _ in range(8)]
    info = {"track": f"synthetic-{theme}", "seed": None, "width": w, "height": h, "karts": karts,
            "distance_down_track": [round(d, 2) for d in ddt], "velocity": vel,
            "detections": [dets], "visible": [visible], "ego_ids": [0], "synthetic": True}
    return img, info


def write_dataset(out: str | Path, n: int, *, seed: int = 0, size: tuple[int, int] = (300, 200),
                  races: int = 4) -> Path:
    """`n` frames into `out/<track>/` as `<gid>_info.json` + `<gid>_00_im.jpg`; `races` seeds per
    theme (the `seed` key, so race_id splits work as on the real frames)."""
    out = Path(out)
    rng = np.random.default_rng(seed)
    for i in range(n):
        img, info = render_scene(rng, size)
        info["seed"] = int(seed * 1000 + i % races)
        folder = out / info["track"]
        folder.mkdir(parents=True, exist_ok=True)
        gid = f"s{seed}-{i:05d}"
        img.save(folder / f"{gid}_00_im.jpg", quality=int(rng.integers(70, 95)))
        (folder / f"{gid}_info.json").write_text(json.dumps(info))
    return out


def kart_names() -> list[str]:
    return list(KARTS)

