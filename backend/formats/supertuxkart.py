"""SuperTuxKart `info.json` layout (the course's layout, plus the keys of ../shared/supertuxkart).

One `<gid>_info.json` per moment and one `<gid>_<view:02d>_im.jpg` per view beside it (a view
without its image is skipped with a warning). `detections[view]` lists
`[class_id, kart_id, x1, y1, x2, y2]` in a 600x400 frame, scaled here to the real image size, then
the box rule of `formats.base` applies (clip partly outside, reject empty / entirely outside).

Class ids (the course's map): 1 kart, 2 track, 3 background, 4 pickup, 5 nitro, 6 bomb,
7 projectile. Only karts are kept by default (`SuperTuxKart(keep=...)` keeps others, labelled by
this map). A kart box gets label `kart` and attributes {kart_id, kart_name, visible}.

Image meta: track, seed, frame (gid), view, race_id (`<track>:seed<seed>`, else the track: split by
race or track, never by frame), karts (names by id), ego_kart_id / ego_kart_name / ego_source
(`ego_ids` when the file has it, else the course rule: the kart box nearest the image centre),
ego_detected (its box is in the frame), race_position (1 = furthest `distance_down_track` among
all karts), num_karts, leader, kart_distances (distance_down_track per kart id),
distance_down_track and velocity of the ego kart, visible shares of the kept boxes. Frames with no karts are images with no boxes.
"""
from __future__ import annotations

import math
import posixpath

from backend.errors import InvalidInput
from backend.formats.base import Dataset, Format, ImageCtx, Source, load_json

CLASS_NAMES = {1: "kart", 2: "track", 3: "background", 4: "pickup", 5: "nitro", 6: "bomb", 7: "projectile"}
FRAME_W, FRAME_H = 600.0, 400.0
SUFFIX = "_info.json"


def _num_list(v: object, n: int | None = None) -> bool:
    return isinstance(v, list) and (n is None or len(v) == n) and all(
        isinstance(x, (int, float)) and not isinstance(x, bool) for x in v)


class SuperTuxKart(Format):
    name = "supertuxkart"

    def __init__(self, keep: frozenset[int] = frozenset({1})):
        self.keep = keep

    def read(self, source: Source, ctx: ImageCtx) -> Dataset:
        infos = [n for n in source.names() if n.endswith(SUFFIX)]
        if not infos:
            raise InvalidInput(f"SuperTuxKart import: no *{SUFFIX} file found")
        ds = Dataset(labels=[CLASS_NAMES[c] for c in sorted(self.keep) if c in CLASS_NAMES])
        for jf in infos:
            self._read_one(jf, source, ctx, ds)
        return ctx.finish(ds)

    def _read_one(self, jf: str, source: Source, ctx: ImageCtx, ds: Dataset) -> None:
        info = load_json(source.read(jf), jf)
        if not isinstance(info, dict) or not isinstance(info.get("detections"), list):
            raise InvalidInput(f"{jf}: missing key 'detections' (a list per view)")
        karts = info.get("karts") or []
        if not isinstance(karts, list) or not all(isinstance(k, str) for k in karts):
            raise InvalidInput(f"{jf}: 'karts' must be a list of kart names")
        gid = posixpath.basename(jf)[: -len(SUFFIX)]
        folder = posixpath.dirname(jf)
        ddt = info.get("distance_down_track") or []
        vel = info.get("velocity") or []
        ego_ids = info.get("ego_ids")
        track, seed = info.get("track"), info.get("seed")
        for v, dets in enumerate(info["detections"]):
            im_name = posixpath.join(folder, f"{gid}_{v:02d}_im.jpg")
            if im_name not in source:
                ctx.warnings.append(f"{jf}: view {v} has no image {im_name}; skipped")
                continue
            img = ctx.image(im_name)
            ctx.check_size(img, info.get("width"), info.get("height"), jf)
            sx, sy = img.width / FRAME_W, img.height / FRAME_H
            vis = (info.get("visible") or [])
            vis = vis[v] if v < len(vis) and isinstance(vis[v], list) else []
            kart_boxes: list[tuple[int, list[float]]] = []
            shares = []
            if not isinstance(dets, list):
                raise InvalidInput(f"{jf}: detections[{v}] must be a list")
            for j, det in enumerate(dets):
                where = f"{jf}: view {v} detection {j}"
                if not _num_list(det, 6):
                    raise InvalidInput(f"{where}: expected [class_id, kart_id, x1, y1, x2, y2], got {det!r}")
                cls, kid = int(det[0]), int(det[1])
                if cls not in self.keep:
                    continue
                attrs: dict = {}
                if cls == 1:
                    if not 0 <= kid < len(karts):
                        raise InvalidInput(f"{where}: kart id {kid} is not in 'karts' ({len(karts)} names)")
                    attrs = {"kart_id": kid, "kart_name": karts[kid]}
                    kart_boxes.append((kid, det[2:]))
                else:
                    attrs = {"instance_id": kid}
                if j < len(vis):
                    attrs["visible"] = vis[j]
                    shares.append(vis[j])
                img.boxes.append(ctx.box(img, CLASS_NAMES.get(cls, f"class_{cls}"), det[2] * sx, det[3] * sy,
                                         det[4] * sx, det[5] * sy, where, attrs))
            if not any(c == 1 for c in self.keep):
                kart_boxes = [(int(d[1]), d[2:]) for d in dets if int(d[0]) == 1]
            img.meta = self._meta(info, gid, v, karts, ddt, vel, ego_ids, kart_boxes, track, seed)
            if shares:
                img.meta["visible"] = shares
            ds.images.append(img)

    @staticmethod
    def _meta(info, gid, v, karts, ddt, vel, ego_ids, kart_boxes, track, seed) -> dict:
        meta: dict = {"track": track, "frame": gid, "view": v, "karts": karts, "num_karts": len(karts)}
        if seed is not None:
            meta["seed"] = seed
        meta["race_id"] = f"{track}:seed{seed}" if seed is not None else track
        ego, source = None, None
        if isinstance(ego_ids, list) and v < len(ego_ids) and isinstance(ego_ids[v], int):
            ego, source = ego_ids[v], "ego_ids"
        elif kart_boxes:  # the course's rule, in the 600x400 frame
            ego = min(kart_boxes, key=lambda kb: math.hypot((kb[1][0] + kb[1][2]) / 2 - FRAME_W / 2,
                                                            (kb[1][1] + kb[1][3]) / 2 - FRAME_H / 2))[0]
            source = "nearest_centre"
        meta.update(ego_kart_id=ego, ego_source=source,
                    ego_kart_name=karts[ego] if ego is not None and 0 <= ego < len(karts) else None,
                    ego_detected=ego is not None and any(k == ego for k, _ in kart_boxes))
        if _num_list(ddt) and ddt:
            meta["kart_distances"] = ddt  # per kart id: race questions about the karts in view
            leader = max(range(len(ddt)), key=lambda i: ddt[i])
            meta["leader"] = karts[leader] if leader < len(karts) else None
            if ego is not None and 0 <= ego < len(ddt):
                meta["distance_down_track"] = ddt[ego]
                meta["race_position"] = 1 + sum(1 for d in ddt if d > ddt[ego])
        if ego is not None and isinstance(vel, list) and 0 <= ego < len(vel) and _num_list(vel[ego]):
            meta["velocity"] = vel[ego]
            meta["speed"] = math.sqrt(sum(x * x for x in vel[ego]))
        return meta
