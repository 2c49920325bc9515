"""The synchronous executor of a run: `execute(run_id, settings)`.

Claims the run (atomic UPDATE queued -> running with a lease), builds Samples from the frozen
snapshot, and by kind:
- train: base evaluation on the held-out split -> LoRA / QLoRA training on the train split ->
  evaluation of the adapter on the same split -> metrics {before, after, table} + every prediction;
- evaluate: one evaluation (of the base, or of an adapter with `adapter_run_id`);
- predict: boxes of the base or an adapter on the chosen images, stored as drafts (phase "predict").

Resumable: each phase's results are committed when it ends, and training checkpoints under the
run's own folder; a re-queued attempt skips the phases already done and resumes training from the
last checkpoint (worker.training resume_from). Progress writes are throttled (and forced at each
checkpoint, so the stored loss history always reaches the checkpoint a resume starts from).

Evaluation loads a base the way the run trains it on CUDA (4/8-bit for QLoRA, the compute dtype
for LoRA; worker.device.eval_precision), in float32 on the CPU; before and after are loaded the
same way, and the run log says which.
"""
from __future__ import annotations

import json
import logging
import threading
import time
import traceback
from collections import defaultdict, deque
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from backend.config import Settings, get_settings
from backend.db import bulk_insert, make_engine, make_sessionmaker
from backend.models import Label, Prediction, Run, RunKind, RunStatus
from backend.runs import LOG_TAIL, RunConfig, load_snapshot, log_line, now, run_dir, store_results
from backend.storage import image_store
from worker.lease import Lease, LeaseLost, default_worker_id
from worker.types import Box, Sample

log = logging.getLogger("studio.runner")
VAL_SAMPLES = 64  # held-out samples of the validation loss (a forward pass each, no generation)
PHASE_SPAN = {"before": (0.0, 0.1), "train": (0.1, 0.9), "after": (0.9, 1.0)}  # share of the progress bar
PRED_COLS = ("run_id", "image_id", "phase", "task", "label", "x1", "y1", "x2", "y2", "score", "raw_text", "qtype",
             "question", "expected", "answer", "correct")


class Cancelled(Exception):
    pass


# One run at a time per process: transformers builds models under a process-global meta-device
# patch, so two loads in two threads corrupt each other ("Cannot copy out of meta tensor"); a GPU
# is one run's anyway. Parallel runs = several worker processes (`studio worker --concurrency N`).
_RUN_LOCK = threading.Lock()


@lru_cache(maxsize=8)
def _sessionmaker(url: str) -> sessionmaker[Session]:
    return make_sessionmaker(make_engine(url))


def execute(run_id: int, settings: Settings | None = None, *, worker_id: str | None = None) -> str | None:
    """Run `run_id` to its end in this process; returns the final status, or None when the run was
    not claimable (already taken by a duplicate message, cancelled, finished)."""
    settings = settings or get_settings()
    sm = _sessionmaker(settings.resolved_database_url())
    lease = Lease(sm, run_id, worker_id or default_worker_id(), settings.run_lease_seconds)
    if not lease.claim():
        return None
    lease.start()
    try:
        with _RUN_LOCK:
            return Executor(settings, sm, lease).run()
    except LeaseLost:
        log.warning("run %s: lease lost; another worker owns it now", run_id)
        return None
    finally:
        lease.stop()


class Executor:
    def __init__(self, settings: Settings, sm: sessionmaker[Session], lease: Lease):
        self.settings, self.sm, self.lease = settings, sm, lease
        with sm() as s:
            run = s.get(Run, lease.run_id)
            self.run_id, self.kind, self.attempt = run.id, run.kind, run.attempts
            self.project_id = run.project_id
            self.cfg = RunConfig.model_validate(run.config)
            self.metrics = dict(run.metrics or {})
            self.tail = deque(run.log_tail or [], maxlen=LOG_TAIL)
            self.history = list(run.loss_history or [])
            self.snapshot = load_snapshot(s, run.snapshot_id) if run.snapshot_id else None  # streamed rows
            self.labels = [n for (n,) in s.execute(select(Label.name).where(Label.project_id == run.project_id)
                                                   .order_by(Label.id))]
            if self.snapshot:  # the classes as they were frozen
                self.labels = list(self.snapshot["labels"])
        self.store = image_store(settings)  # S3: images and run outputs are cached under data_dir
        self.storage = self.store.storage
        self.out = run_dir(settings, self.run_id)
        self._last_write = 0.0
        self._last_cancel_check = 0.0
        self._cancel = False
        self._eval_rate: float | None = None  # held-out samples/s measured by the last evaluation
        # The base's detections of the before phase of this attempt: the after phase pools them
        # (pool_base_boxes) instead of decoding the same images again with the adapter off.
        self._base_det: list | None = None

    # ------------------------------------------------------------ row writes
    def write(self, session: Session | None = None, **values) -> None:
        """Guarded UPDATE of the run row (LeaseLost if this worker no longer holds it)."""
        values.setdefault("log_tail", list(self.tail))
        own = session is None
        s = session or self.sm()
        try:
            res = s.execute(self.lease.guard(update(Run)).values(version=Run.version + 1, **values))
            if res.rowcount == 0:
                s.rollback()
                raise LeaseLost(self.run_id)
            s.commit()
        finally:
            if own:
                s.close()
        self._last_write = time.monotonic()

    def say(self, msg: str, **values) -> None:
        log.info("run %s: %s", self.run_id, msg)
        self.tail.append(log_line(msg))
        self.write(**values)

    def should_cancel(self) -> bool:
        t = time.monotonic()
        if not self._cancel and t - self._last_cancel_check > 0.2:
            self._last_cancel_check = t
            with self.sm() as s:
                self._cancel = bool(s.scalar(select(Run.cancel_requested).where(Run.id == self.run_id)))
        if self.lease.lost:
            raise LeaseLost(self.run_id)
        return self._cancel

    def finish(self, status: RunStatus, msg: str, **values) -> str:
        self.tail.append(log_line(msg))
        self.write(status=status, ended_at=now(), eta_seconds=0 if status == RunStatus.succeeded else None,
                   **values)
        return status.value

    # ------------------------------------------------------------ main
    def run(self) -> str:
        try:
            self.say(f"attempt {self.attempt}: {self.kind.value} run started", phase="starting")
            from backend.catalog import require_reachable  # the hub may have gone since the launch: fail now

            require_reachable(self.settings, self.cfg.base_model)
            if self.kind == RunKind.train:
                return self.train()
            if self.kind == RunKind.evaluate:
                return self.evaluate_only()
            return self.predict_only()
        except (LeaseLost, KeyboardInterrupt):
            raise
        except Cancelled:
            return self.finish(RunStatus.cancelled, "cancelled")
        except Exception as e:  # noqa: BLE001 - every failure ends the run with its reason
            msg = f"{type(e).__name__}: {e}"
            log.exception("run %s failed", self.run_id)
            return self.finish(RunStatus.failed, f"failed: {msg}", error=msg, traceback=traceback.format_exc())

    def device(self) -> str:
        import torch

        from worker.device import pick_device

        requested = self.cfg.device or self.settings.device
        if self.cfg.method == "qlora":
            # bitsandbytes must run a quantised op there, or the run fails now with the reason
            from worker.device import resolve_dtype
            from worker.training import DTYPES, probe_quantization

            where = ("cuda" if torch.cuda.is_available() else "cpu") if requested == "auto" else requested
            probe_quantization(self.cfg.bits, where, DTYPES[resolve_dtype(self.cfg.compute_dtype, where)])
        return pick_device(requested)

    # ------------------------------------------------------------ samples
    def _image_path(self, im: dict) -> Path:
        return self.store.path(im["sha256"], im["ext"])

    @staticmethod
    def _boxes(raw: list) -> list[Box]:
        return [Box(b["label"], float(b["x1"]), float(b["y1"]), float(b["x2"]), float(b["y2"])) for b in raw]

    def _qa_sample(self, im: dict, qa: list, *, with_image: bool = True) -> Sample:
        """with_image=False: the text and boxes only (no image path, so nothing is fetched from
        object storage), for answer statistics."""
        _qid, fam, tid, question, answer, params = qa
        params = params if isinstance(params, dict) else json.loads(params or "{}")
        boxes = self._boxes(params.get("boxes") or [])
        image = self._image_path(im) if with_image else ""
        if params.get("task") == "detect":
            return Sample(image=image, task="detect", classes=list(params.get("classes") or self.labels),
                          boxes=boxes, image_id=im["id"], qtype=fam)
        return Sample(image=image, task="vqa", question=question, answer=answer, boxes=boxes,
                      qtype=fam, image_id=im["id"], template=tid)

    def _det_sample(self, im: dict) -> Sample:
        return Sample(image=self._image_path(im), task="detect", classes=list(self.labels),
                      boxes=[Box(*b) for b in im["boxes"]], image_id=im["id"])

    def train_samples(self) -> list[Sample]:
        """Detection targets come from the snapshot's boxes only (a detect QA pair contributes its
        classes, never the boxes copied into it when it was generated: those may be stale)."""
        w = self.cfg.tasks
        out = []
        for im in self.snapshot["images"]:
            if im["split"] != self.cfg.train_split:
                continue
            qa = [self._qa_sample(im, q) for q in im["qa"]]
            det = []
            for s in qa:
                if s.task == "detect":
                    wanted = {c for c in s.classes}
                    s.boxes = [b for b in self._det_sample(im).boxes if b.label in wanted]
                    det.append(s)
            if w.get("detect", 0) > 0:
                out += det or ([self._det_sample(im)] if self.labels else [])
            if w.get("vqa", 0) > 0:
                out += [s for s in qa if s.task == "vqa"]
        return out

    def eval_images(self) -> list[dict]:
        ims = [im for im in self.snapshot["images"] if im["split"] == self.cfg.eval_split]
        return ims[: self.cfg.max_eval_images] if self.cfg.max_eval_images else ims

    def eval_samples(self) -> tuple[list[Sample], list[Sample]]:
        """Detection samples (every held-out image) and VQA samples (up to eval_qa_per_image per
        image, taken round-robin over the question families so each type is measured)."""
        ims = self.eval_images()
        det = [self._det_sample(im) for im in ims] if self.labels else []
        vqa: list[Sample] = []
        for im in ims:
            by_fam: dict[str, deque] = defaultdict(deque)
            for q in im["qa"]:
                s = self._qa_sample(im, q)
                if s.task == "vqa":
                    by_fam[s.qtype].append(s)
            picked: list[Sample] = []
            while len(picked) < self.cfg.eval_qa_per_image and any(by_fam.values()):
                for fam in sorted(by_fam):
                    if by_fam[fam] and len(picked) < self.cfg.eval_qa_per_image:
                        picked.append(by_fam[fam].popleft())
            vqa += picked
        return det, vqa

    # ------------------------------------------------------------ evaluation
    def evaluate(self, model, processor, family, phase: str, det: list[Sample], vqa: list[Sample]) -> dict:
        """Predict, score, and store the phase's metrics and predictions in one transaction."""
        from worker.inference import predict
        from worker.metrics import ImageTruth, detection_metrics, normalize_answer, vqa_accuracy

        lo, hi = PHASE_SPAN[phase]
        samples = det + vqa
        pooled = phase == "after" and self.cfg.pool_base_boxes and bool(det)
        work = self.after_work(det, vqa) if pooled else len(samples)

        t_eval = time.monotonic()

        def progress(done: int, total: int, offset: int = 0) -> None:
            if self.should_cancel():
                raise Cancelled
            done += offset
            if time.monotonic() - self._last_write > 0.5:
                # ETA from this phase's measured samples/s (and, before training, the after phase's work)
                rate = done / max(time.monotonic() - t_eval, 1e-6)
                self._eval_rate = rate if done else self._eval_rate
                eta = (work - done) / rate if done else None
                if eta is not None and phase == "before" and self.kind == RunKind.train:
                    eta += self.after_work(det, vqa, base_kept=True) / rate
                self.write(progress=lo + (hi - lo) * done / max(work, 1), eta_seconds=eta)

        sizes = {im["id"]: (im["width"], im["height"]) for im in self.snapshot["images"]}
        budget = self.max_new_tokens(family, processor, samples, [sizes[s.image_id] for s in samples])
        self.say(f"{phase}: evaluating on {len(det)} held-out images and {len(vqa)} questions "
                 f"(max_new_tokens {budget})", phase=phase, progress=lo)
        preds = predict(model, processor, family, samples, batch_size=self.cfg.eval_batch_size,
                        max_new_tokens=budget, progress=progress) if samples else []
        rows: list[tuple] = []
        out: dict = {}
        per_image = None
        det_preds = preds[: len(det)]
        if phase == "before":
            self._base_det = det_preds
        if det:
            truths = [ImageTruth(s.image_id, *sizes[s.image_id], s.boxes) for s in det]
            alone = None
            if pooled:
                alone = detection_metrics(truths, det_preds, classes=self.labels)
                det_preds = self.pool_base(model, processor, family, det_preds, det, budget,
                                           lambda d, t: progress(d, t, offset=len(samples)))
            out = detection_metrics(truths, det_preds, classes=self.labels)
            per_image = out.pop("per_image")
            if alone is not None:  # what the adapter scores on its own, beside the pooled numbers
                out["adapter_alone"] = {k: alone.get(k) for _, k in TABLE_METRICS}
            for p in det_preds:
                rows += _box_rows(self.run_id, phase, p)
        if vqa:
            refs = [family.target_text(s, *sizes[s.image_id]) for s in vqa]
            answers = [p.answer for p in preds[len(det):]]
            out["vqa"] = vqa_accuracy(answers, refs, [s.qtype for s in vqa])
            for s, p, ref in zip(vqa, preds[len(det):], refs):
                ok = p.answer is not None and normalize_answer(p.answer) == normalize_answer(ref)
                rows.append((self.run_id, s.image_id, phase, "vqa", None, None, None, None, None, None, p.text,
                             s.qtype, family.prompt(s), ref, p.answer, ok))
        self.metrics[phase] = out
        if det and "prior" not in self.metrics:
            self.metrics["prior"] = self.location_prior(truths)
        if vqa and "majority" not in self.metrics:
            self.metrics["majority"] = self.majority_baseline(family, vqa, refs)
        if "before" in self.metrics or "after" in self.metrics:
            self.metrics["table"] = table(self.metrics.get("before"), self.metrics.get("after"),
                                          self.metrics.get("prior"), self.metrics.get("majority"))
        with self.sm() as s:
            s.execute(Prediction.__table__.delete().where(Prediction.run_id == self.run_id, Prediction.phase == phase))
            bulk_insert(s, Prediction.__table__, PRED_COLS, rows)
            if per_image is not None:  # rows, so the gallery sorts and pages in SQL
                store_results(s, self.run_id, phase, per_image, {im["id"]: im["split"] for im in self.snapshot["images"]})
            self.tail.append(log_line(f"{phase}: {summary(out)}"))
            self.write(s, metrics=self.metrics, progress=hi)
        return out

    def after_work(self, det: list[Sample], vqa: list[Sample], base_kept: bool | None = None) -> int:
        """Samples the after phase decodes: each held-out sample, and the images again when the
        run pools the base's boxes without the before phase's at hand (`base_kept`, default: this
        attempt evaluated the base)."""
        kept = self._base_det is not None if base_kept is None else base_kept
        return len(det) + len(vqa) + (len(det) if self.cfg.pool_base_boxes and not kept else 0)

    def pool_base(self, model, processor, family, preds: list, det: list[Sample], budget: int,
                  progress: Callable[[int, int], None]) -> list:
        """`pool_base_boxes`: the adapter's boxes pooled with its base's on the same images
        (worker/pooling.py); the base is the same model with the adapter switched off."""
        from worker.inference import predict
        from worker.pooling import pool

        if self._base_det is not None:  # pool() checks they are the same images in the same order
            self.say(f"pool_base_boxes: the before phase's boxes of the base on the {len(det)} images, pooled "
                     "with the adapter's")
            return pool(preds, self._base_det)
        self.say(f"pool_base_boxes: the base's boxes on the same {len(det)} images, pooled with the adapter's")
        with model.disable_adapter():
            base = predict(model, processor, family, det, batch_size=self.cfg.eval_batch_size, max_new_tokens=budget,
                           progress=progress)
        return pool(preds, base)

    def max_new_tokens(self, family, processor, samples: list[Sample], sizes: list[tuple[int, int]],
                       min_objects: int = 0) -> int:
        """The run's max_new_tokens; `auto` = worker.decoding.auto_max_new_tokens of these samples."""
        if self.cfg.max_new_tokens != "auto":
            return int(self.cfg.max_new_tokens)
        from worker.decoding import auto_max_new_tokens

        return auto_max_new_tokens(family, processor, samples, sizes, min_objects=min_objects)

    def location_prior(self, truths: list) -> dict | None:
        """worker.metrics.location_prior of the train split's boxes on the evaluated images (the
        score of a model that ignores the image), or None when the train split has no boxes."""
        from worker.metrics import ImageTruth, location_prior

        train = [ImageTruth(im["id"], im["width"], im["height"], [Box(*b) for b in im["boxes"]])
                 for im in self.snapshot["images"] if im["split"] == self.cfg.train_split and im["boxes"]]
        if not train:
            return None
        m = location_prior(train, truths)
        return {k: m[k] for k in [key for _, key in TABLE_METRICS] + ["boxes"]}

    def majority_baseline(self, family, vqa: list[Sample], refs: list[str]) -> dict | None:
        """worker.metrics.majority_answer: per question template, the train split's most common
        answer (in the family's answer syntax) given to every held-out question, reported per
        family; None without train QA."""
        from worker.metrics import majority_answer

        train = []
        for im in self.snapshot["images"]:
            if im["split"] != self.cfg.train_split:
                continue
            for q in im["qa"]:
                s = self._qa_sample(im, q, with_image=False)
                if s.task == "vqa":
                    train.append((s.qtype, s.template, family.target_text(s, im["width"], im["height"])))
        if not train:
            return None
        return majority_answer(train, [(s.qtype, s.template, r) for s, r in zip(vqa, refs)])

    def _load_base(self, device: str):
        from worker.families import get_family
        from worker.training import load_for_eval

        c = self.cfg
        family = get_family(c.family)
        model, processor, note = load_for_eval(family, c.base_model, method=c.method, bits=c.bits,
                                               quant_type=c.quant_type, compute_dtype=c.compute_dtype,
                                               device=device, max_pixels=c.max_pixels)
        self.say(f"base model loaded for evaluation in {note}")
        return model, processor, family

    def _load_adapter(self, adapter_dir: str | Path, device: str):
        from worker.device import eval_precision
        from worker.train_config import TrainConfig
        from worker.training import CONFIG_NAME, load_with_adapter

        tc = TrainConfig.load(Path(adapter_dir) / CONFIG_NAME)
        note = eval_precision(tc.method, tc.bits, tc.quant_type, tc.compute_dtype, device)[2]
        out = load_with_adapter(adapter_dir, self.cfg.base_model, device=device)
        self.say(f"base model + adapter loaded for evaluation in {note}")
        return out

    def _adapter_of(self, run_id: int) -> str:
        with self.sm() as s:
            return str(self.storage.fetch_dir(s.scalar(select(Run.adapter_path).where(Run.id == run_id))))

    def _push(self, local: Path, *, mirror: bool = False, last: str | None = None) -> str:
        """Put a folder under the run's output folder into the store; return the ref a row keeps."""
        key = f"runs/{self.run_id}/{Path(local).resolve().relative_to(self.out).as_posix()}"
        self.storage.push_dir(key, local, mirror=mirror, last=last)
        return self.storage.ref(key)

    # ------------------------------------------------------------ kinds
    def train(self) -> str:
        from worker.train_config import TrainConfig
        from worker.training import Progress, checkpoint_history, latest_checkpoint, train

        device = self.device()
        self.store.prefetch({(im["sha256"], im["ext"]) for im in self.snapshot["images"]})
        train_s = self.train_samples()
        det, vqa = self.eval_samples()
        self.say(f"snapshot: {len(train_s)} training samples, {len(det)} held-out images, {len(vqa)} held-out "
                 f"questions; device {device}")
        if "before" in self.metrics:
            self.say("before: kept from the previous attempt")
        else:
            model, processor, family = self._load_base(device)
            self.evaluate(model, processor, family, "before", det, vqa)
            del model
        self.out.mkdir(parents=True, exist_ok=True)
        tc = TrainConfig.from_dict({**self.cfg.train_dict(str(self.out)), "device": device})
        resume = None
        self._pull_checkpoints()  # another machine's attempt left them in the store
        try:
            ck = latest_checkpoint(self.out)
            resume = self.out
            ck_step = int(ck.name.split("-")[-1])
            self.history = resumed_history(self.history, checkpoint_history(ck), ck_step, self.attempt - 1)
            self.say(f"train: resuming from checkpoint {ck.name} (step {ck_step})")
        except FileNotFoundError:
            self.history = []
        lo, hi = PHASE_SPAN["train"]

        last_line = [0.0]
        after_s = self.after_work(det, vqa) / self._eval_rate if self._eval_rate else 0.0  # the evaluation to come

        def progress(p: Progress) -> None:
            self.history.append({"step": p.step, "loss": p.loss, "lr": p.learning_rate, "attempt": self.attempt,
                                 **({"val_loss": p.val_loss} if p.val_loss is not None else {})})
            if p.step == 1 or p.step == p.total or time.monotonic() - last_line[0] > 10:  # throttled log line
                last_line[0] = time.monotonic()
                self.tail.append(log_line(f"train: step {p.step}/{p.total} loss {p.loss:.4f} lr {p.learning_rate:.2e} "
                                          f"{p.samples_per_s:.1f} samples/s"))
            at_ck = bool(tc.checkpoint_every) and p.step % tc.checkpoint_every == 0
            if at_ck:
                from worker.training import STATE_NAME

                self._push(self.out / "checkpoints", mirror=True, last=STATE_NAME)
            if at_ck or p.step == p.total or time.monotonic() - self._last_write > 0.5:
                self.write(phase="train", step=p.step, total_steps=p.total, progress=lo + (hi - lo) * p.step / p.total,
                           loss_history=self.history, learning_rate=p.learning_rate, samples_per_s=p.samples_per_s,
                           eta_seconds=p.eta_s + after_s)

        self.say(f"train: {tc.method} rank {tc.rank}, {tc.max_steps or tc.epochs} {'steps' if tc.max_steps else 'epochs'}",
                 phase="train")
        if self.cfg.devices > 1:  # one machine, N processes (torchrun + DDP); same progress, checkpoints, cancel
            from functools import partial

            from worker.distributed import train_distributed

            train = partial(train_distributed, devices=self.cfg.devices)
        result = train(tc, train_s, val_samples=(det + vqa)[:VAL_SAMPLES], progress=progress,
                       should_cancel=self.should_cancel, resume_from=resume)
        if result.val_losses:  # the held-out loss (every eval_every steps and at the end): the chart's second line
            self.metrics["val_loss"] = [[st, v] for st, v in result.val_losses]
        values = dict(adapter_path=self._push(result.adapter_dir), adapter_bytes=result.adapter_bytes, step=result.steps,
                      loss_history=self.history, metrics=self.metrics)
        if result.cancelled:
            return self.finish(RunStatus.cancelled, f"cancelled at step {result.steps}; the adapter of that step is kept",
                               **values)
        self.say(f"train: done, {result.steps} steps, adapter {result.adapter_bytes} bytes", **values)
        model, processor, family = self._load_adapter(result.adapter_dir, device)
        self.evaluate(model, processor, family, "after", det, vqa)
        return self.finish(RunStatus.succeeded, "succeeded", progress=1.0, phase="done")

    def _pull_checkpoints(self) -> None:
        from worker.training import STATE_NAME

        ck_root = self.out / "checkpoints"
        self.storage.pull_dir(f"runs/{self.run_id}/checkpoints", ck_root)
        for ck in ck_root.glob("step-*[0-9]"):
            if not (ck / STATE_NAME).exists():  # its upload was cut short: not a checkpoint
                import shutil

                shutil.rmtree(ck, ignore_errors=True)

    def evaluate_only(self) -> str:
        device = self.device()
        if self.snapshot:
            self.store.prefetch({(im["sha256"], im["ext"]) for im in self.snapshot["images"]})
        det, vqa = self.eval_samples()
        if self.cfg.adapter_run_id is not None:
            model, processor, family = self._load_adapter(self._adapter_of(self.cfg.adapter_run_id), device)
            phase = "after"
        else:
            model, processor, family = self._load_base(device)
            phase = "before"
        self.evaluate(model, processor, family, phase, det, vqa)
        return self.finish(RunStatus.succeeded, "succeeded", progress=1.0, phase="done")

    def predict_only(self) -> str:
        from backend.models import Image
        from worker.inference import predict

        device = self.device()
        if self.cfg.adapter_run_id is not None:
            model, processor, family = self._load_adapter(self._adapter_of(self.cfg.adapter_run_id), device)
        else:
            model, processor, family = self._load_base(device)
        with self.sm() as s:
            ims = s.execute(select(Image.id, Image.sha256, Image.ext).where(Image.id.in_(self.cfg.image_ids))
                            .order_by(Image.id)).all()
        self.store.prefetch([(sha, ext) for _, sha, ext in ims])
        samples = [Sample(image=self.store.path(sha, ext), task="detect", classes=list(self.labels), image_id=iid)
                   for iid, sha, ext in ims]
        self.say(f"predict: {len(samples)} images", phase="predict")

        pooled = self.cfg.adapter_run_id is not None and self.cfg.pool_base_boxes

        def progress(done: int, total: int, offset: int = 0) -> None:
            if self.should_cancel():
                raise Cancelled
            if time.monotonic() - self._last_write > 0.5:  # with the pool, each pass is half the bar
                self.write(progress=(offset + done) / max(total * (2 if pooled else 1), 1))

        from worker.inference import image_size

        # no ground truth here: room for the most objects of any labelled image (at least 20)
        most = max([len(im["boxes"]) for im in (self.snapshot or {}).get("images", [])] + [20])
        budget = self.max_new_tokens(family, processor, samples, [image_size(s) for s in samples], most)
        preds = predict(model, processor, family, samples, batch_size=self.cfg.eval_batch_size,
                        max_new_tokens=budget, progress=progress)
        if pooled:
            preds = self.pool_base(model, processor, family, preds, samples, budget,
                                   lambda d, t: progress(d, t, offset=t))
        rows = [r for p in preds for r in _box_rows(self.run_id, "predict", p)]
        n_boxes = sum(len(p.boxes) for p in preds)
        with self.sm() as s:
            s.execute(Prediction.__table__.delete().where(Prediction.run_id == self.run_id))
            bulk_insert(s, Prediction.__table__, PRED_COLS, rows)
            self.tail.append(log_line(f"predict: {n_boxes} boxes on {len(preds)} images"))
            self.write(s, metrics={"n_images": len(preds), "n_boxes": n_boxes})
        return self.finish(RunStatus.succeeded, "succeeded", progress=1.0, phase="done")


def resumed_history(stored: list[dict], saved: list[dict], ck_step: int, attempt: int) -> list[dict]:
    """The loss history a resume from checkpoint `ck_step` starts with: the stored entries up to it,
    and the checkpoint's own curve for the steps the killed attempt saved but never reported
    (its last progress write comes after the checkpoint), marked with that attempt."""
    kept = [h for h in stored if h["step"] <= ck_step]
    reported = {h["step"] for h in kept}
    lost = [{**h, "attempt": attempt} for h in saved if h["step"] <= ck_step and h["step"] not in reported]
    return sorted(kept + lost, key=lambda h: h["step"])


def _box_rows(run_id: int, phase: str, p) -> list[tuple]:
    if not p.boxes:  # keep the raw text of an image with no decoded box
        return [(run_id, p.image_id, phase, "detect", None, None, None, None, None, None, p.text, None, None, None,
                 None, None)]
    return [(run_id, p.image_id, phase, "detect", b.label[:100], b.x1, b.y1, b.x2, b.y2, b.score, p.text, None, None,
             None, None, None) for b in p.boxes]


# ------------------------------------------------------------ the before / after table
TABLE_METRICS = [("mAP", "map"), ("AP50", "ap50"), ("AP75", "ap75"), ("precision@50", "precision"),
                 ("recall@50", "recall"), ("F1@50", "f1"), ("mean IoU", "mean_iou"),
                 ("distinct boxes", "distinct_boxes"), ("centre r x", "centre_r_x"), ("centre r y", "centre_r_y")]


def _row(name: str, b: float | None, a: float | None, prior: float | None = None,
         majority: float | None = None, alone: float | None = None) -> dict:
    delta = a - b if a is not None and b is not None else None
    pct = delta / abs(b) * 100 if delta is not None and b else None
    return {"metric": name, "pretrained": b, "finetuned": a, "delta": delta, "delta_pct": pct, "prior": prior,
            "majority": majority, "adapter_alone": alone}


def table(before: dict | None, after: dict | None, prior: dict | None = None,
          majority: dict | None = None) -> list[dict]:
    """Seed 000's table: metric, pretrained, finetuned, Δ absolute, Δ % (None where undefined),
    plus the two no-model baselines: `prior`, the location prior's value of the detection metrics,
    and `majority`, the majority-answer accuracy of the VQA rows (None elsewhere); and
    `adapter_alone`, the adapter's own detection metrics when `finetuned` pools the base's boxes."""
    b, a, p, mj = before or {}, after or {}, prior or {}, majority or {}
    alone = a.get("adapter_alone") or {}
    rows = [_row(n, b.get(k), a.get(k), p.get(k), alone=alone.get(k)) for n, k in TABLE_METRICS if k in b or k in a]
    bv, av = b.get("vqa") or {}, a.get("vqa") or {}
    if bv or av:
        rows.append(_row("VQA accuracy", bv.get("accuracy"), av.get("accuracy"), majority=mj.get("accuracy")))
        for t in sorted(set(bv.get("per_type", {})) | set(av.get("per_type", {}))):
            rows.append(_row(f"VQA accuracy: {t}", bv.get("per_type", {}).get(t, {}).get("accuracy"),
                             av.get("per_type", {}).get(t, {}).get("accuracy"),
                             majority=mj.get("per_type", {}).get(t, {}).get("accuracy")))
    bc, ac = b.get("per_class") or {}, a.get("per_class") or {}
    for c in sorted(set(bc) | set(ac)):
        if not (bc.get(c, {}).get("known", True) and ac.get(c, {}).get("known", True)):
            continue  # an invented label has no AP / IoU to compare
        for name, k in (("AP", "ap"), ("AP50", "ap50"), ("mean IoU", "mean_iou")):
            rows.append(_row(f"{name}: {c}", bc.get(c, {}).get(k), ac.get(c, {}).get(k)))
    return rows


def summary(m: dict) -> str:
    parts = [f"{k}={m[k]:.3f}" for k in ("map", "ap50", "f1") if isinstance(m.get(k), (int, float))]
    if isinstance((m.get("vqa") or {}).get("accuracy"), (int, float)):
        parts.append(f"vqa={m['vqa']['accuracy']:.3f}")
    return ", ".join(parts) or "no metric"


# ------------------------------------------------------------ merge
def merge_run(run_id: int, settings: Settings | None = None) -> str:
    """Merge a succeeded train run's adapter into its base; the merged model lands in the run's folder."""
    from backend.storage import open_storage
    from worker.training import merge

    settings = settings or get_settings()
    storage = open_storage(settings)
    sm = _sessionmaker(settings.resolved_database_url())
    with sm() as s:
        run = s.get(Run, run_id)
        if run is None or run.kind != RunKind.train or run.status != RunStatus.succeeded or not run.adapter_path:
            raise ValueError(f"run {run_id} has no adapter to merge")
        base, adapter = run.config["base_model"], run.adapter_path
    out = run_dir(settings, run_id) / "merged"
    tmp = out.with_name("merged.tmp")
    import shutil

    shutil.rmtree(tmp, ignore_errors=True)
    merge(base, storage.fetch_dir(adapter), tmp)
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    storage.push_dir(f"runs/{run_id}/merged", out, mirror=True)
    with sm() as s:
        tail = list(s.get(Run, run_id).log_tail or [])[-LOG_TAIL + 1:]
        s.execute(update(Run).where(Run.id == run_id).values(
            merged_path=storage.ref(f"runs/{run_id}/merged"), version=Run.version + 1,
            log_tail=tail + [log_line(f"merged the adapter into the base: {out}")]))
        s.commit()
    return str(out)
