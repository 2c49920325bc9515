"""The demo base's pre-training recipe (worker/demo_model.py trains it): every knob, its tuned
default, and the checks that turn a bad override (STUDIO_DEMO_RECIPE, `studio models build demo`)
into one clear error naming the field before an hour of CPU starts, not a traceback mid-build.
No torch here: backend.config validates STUDIO_DEMO_RECIPE with it at start-up."""
from __future__ import annotations

import ast
import dataclasses
import hashlib
import inspect
import json
import sys
from collections.abc import Mapping

# What each numeric knob accepts; the rest (n_synthetic, aux_weight, min_box, seed) only "at least 0".
AT_LEAST_1 = ("image_size", "patch", "hidden", "vision_layers", "text_layers", "vocab", "steps", "batch_size", "repeat")
ABOVE_0 = ("lr", "loc_sigma")
SHARES = ("crop", "det_share", "paste", "colour")  # 0 to 1
HEADS = 4  # attention heads (worker.demo_model.build_base): the vision tower needs hidden % HEADS == 0
# The order the base's detection targets are written in (worker.demo_model); a fine-tune keeps it.
OBJECT_ORDER = "largest_first"


@dataclasses.dataclass(frozen=True)
class Recipe:
    image_size: int = 224  # 14x14 patches of 16 px: a 20 px kart of a 300 px frame is ~1 patch (160 px: 0.7)
    patch: int = 16
    hidden: int = 128
    vision_layers: int = 2
    text_layers: int = 2
    vocab: int = 900
    families: tuple[str, ...] = ("detection", "counting", "spatial")
    n_synthetic: int = 0  # drawn scenes (worker/synth_karts.py) added to the real frames
    steps: int = 6000
    batch_size: int = 16
    lr: float = 2e-3
    aux_weight: float = 1.0  # the dense patch loss (objectness + box) next to the token loss
    loc_sigma: float = 6.0  # bins: width of the soft location targets
    crop: float = 0.5  # random crops of detection samples keep 50-100 % of each side (worker/augment.py)
    det_share: float = 0.5  # share of detection samples in a batch; questions fill the rest
    # Detection targets whose longer side is under this many pixels at the model's input are
    # dropped (0: none): set B's far karts are 2-4 px, a dot the model cannot see, and 2/3 of its
    # boxes. (Questions still count them: a count is the engine's, whatever the model can see.)
    min_box: float = 6.0
    # Question templates whose answers are drawn equally often (each template keeps its share): with
    # the answer prior gone the loss only falls by looking. Set B's camera follows kart 0 in the pack,
    # so 85 % of its other karts are "in front"; under set A's leader camera 87 % are "behind".
    balance: tuple[str, ...] = ()
    # Share of detection samples given 1-2 pasted real kart crops of any size and place
    # (worker/copy_paste.py; 0: none): the demo's held-out karts are near and large, set B's far.
    paste: float = 0.0
    # Strength of random colour changes (worker/augment.py colour_jitter; 0: none) on detection and
    # counting samples: each track has its own palette and one driver's kart colour.
    colour: float = 0.0
    # Tracks whose samples are repeated `repeat` times: hacienda is the only pre-training track
    # with the demo's camera (set A follows the race leader, so the other karts are behind it, near
    # and large at the frame's edges; set B follows kart 0 in the pack, the others far ahead).
    # Measured (README): hacienda 4x / 8x lowered the held-out AP50 (0.42-0.48 against 0.52-0.57)
    # and found fewer near karts; it met the spatial target through set A's "behind" prior. Off.
    repeat_tracks: tuple[str, ...] = ()
    repeat: int = 1
    seed: int = 0

    def __post_init__(self):
        bad = []
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if f.type.startswith("tuple"):
                if isinstance(v, str) or not isinstance(v, (list, tuple)) or not all(isinstance(x, str) for x in v):
                    raise ValueError(f"demo recipe: {f.name} must be a list of names, got {v!r}")
                object.__setattr__(self, f.name, tuple(v))  # JSON gives lists; the card compares tuples
                continue
            if isinstance(v, bool) or not isinstance(v, int if f.type == "int" else (int, float)):
                raise ValueError(f"demo recipe: {f.name} must be {'an integer' if f.type == 'int' else 'a number'}, "
                                 f"got {v!r}")
            if f.name in AT_LEAST_1 and v < 1:
                bad.append(f"{f.name}={v!r} (at least 1)")
            elif f.name in ABOVE_0 and v <= 0:
                bad.append(f"{f.name}={v!r} (above 0)")
            elif f.name in SHARES and not 0 <= v <= 1:
                bad.append(f"{f.name}={v!r} (0 to 1)")
            elif v < 0:
                bad.append(f"{f.name}={v!r} (at least 0)")
        if bad:
            raise ValueError("demo recipe: out of range: " + ", ".join(bad))
        if self.image_size % self.patch:
            raise ValueError(f"demo recipe: image_size {self.image_size} is not a multiple of patch {self.patch}")
        if self.hidden % HEADS:
            raise ValueError(f"demo recipe: hidden {self.hidden} is not a multiple of {HEADS} (attention heads)")
        from backend.errors import InvalidInput
        from backend.qa import check_families

        try:
            check_families(list(self.families))
        except InvalidInput as e:  # a ValueError is what pydantic turns into the setting's error
            raise ValueError(f"demo recipe: {e}") from None

    @classmethod
    def from_overrides(cls, overrides: Mapping | None = None) -> Recipe:
        """The tuned defaults with `overrides` (a JSON object) applied; unknown keys are an error."""
        if overrides is None:
            return cls()
        if not isinstance(overrides, Mapping):
            raise ValueError(f"demo recipe: expected a JSON object of overrides, got {type(overrides).__name__}")
        known = [f.name for f in dataclasses.fields(cls)]
        if unknown := sorted(set(overrides) - set(known)):
            raise ValueError(f"demo recipe: unknown keys {unknown} (known: {', '.join(known)})")
        return cls(**overrides)

    def repeated(self, tracks) -> list[str]:
        """The tracks of `tracks` drawn more than once (what the log and the card name)."""
        return [t for t in tracks if t in self.repeat_tracks] if self.repeat > 1 else []

    def key(self) -> str:
        """The cache key of a local rebuild: the recipe and the code that trains it (not its prose)."""
        import worker.copy_paste as cp
        import worker.demo_model as dm
        import worker.synth_karts as sk

        src = "".join(code_fingerprint(inspect.getsource(m)) for m in (sk, cp, dm, sys.modules[__name__]))
        blob = json.dumps(dataclasses.asdict(self), sort_keys=True) + src
        return hashlib.sha256(blob.encode()).hexdigest()[:12]


def finetune_settings(recipe: Mapping) -> dict:
    """The run settings a base pre-trained with `recipe` (a card's JSON) was made for: its object
    order and its loss (soft location targets of its sigma). The demo's run uses them and the
    catalogue suggests them, so a fine-tune does not switch to a loss and order the base never saw."""
    return {"object_order": OBJECT_ORDER, "loc_sigma": float(recipe.get("loc_sigma", Recipe.loc_sigma))}


def code_fingerprint(source: str) -> str:
    """The syntax tree of `source` without docstrings (comments never reach it): a reworded
    docstring or comment does not make a user's cached base train again for an hour."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(body, list) and body and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str)):
            node.body = body[1:]  # only dumped, never compiled
    return ast.dump(tree)
