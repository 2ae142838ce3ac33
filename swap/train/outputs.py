"""What a training run leaves in the model folder, as a mixin of the Trainer: checkpoints (+ snapshots,
best/), config.json's facts, loss.csv and loss.png, preview.png (+ timelapse/) and the identity check
(dlib judges who the swapped previews look like)."""
from __future__ import annotations

import csv
import io
import itertools
import math
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np
import torch

from provenance.fsutil import atomic_write_bytes

from ..models import checkpoint as mio
from ..video import write_image_atomic
from .augment import center_batch
from .data import FaceSet
from .setup import _rng_b64, _rng_from_b64


class TrainerOutputs:
    """The Trainer's reads and writes of its model folder (see swap.train.loop.Trainer for the state)."""

    def _resume(self, ck: Dict[str, Any]) -> None:
        mio.load_weights(self.model, ck["weights"], self.arch)
        if ck["optimizer"] is not None:
            mio.load_optimizer(self.opt, self.param_names, ck["optimizer"])
            for p, st in self.opt.state.items():   # loaded state is contiguous: match each param's layout
                for k, v in st.items():
                    if torch.is_tensor(v) and v.shape == p.shape and v.stride() != p.stride():
                        st[k] = torch.empty_like(p).copy_(v)
        st = ck["state"]
        self.best = st.get("best")
        self.iteration = int(st.get("iteration", 0))
        self.elapsed_before = float(st.get("elapsed", 0.0))
        self.resumed_from = self.iteration
        rngs = st.get("rng", {})
        gens = rngs.get("generators") or []
        if len(gens) == self.world:
            self.gen.set_state(_rng_from_b64(gens[self.rank]))
        elif gens:
            self.gen.manual_seed(self.cfg.seed * 1000 + self.rank + 7919 * self.iteration)
        if rngs.get("torch"):
            torch.set_rng_state(_rng_from_b64(rngs["torch"]))
        if self.is_main:
            self._truncate_logs()

    def _read_losses(self, queued: List[Any], queued_at: List[float]) -> List[Dict[str, Any]]:
        """Read the queued steps' losses back in one transfer, log them, empty the queues; their rows."""
        values = torch.stack([l for _, l in queued]).tolist()
        rows = []
        for (it, _), v, el in zip(queued, values, queued_at):
            if not all(math.isfinite(x) for x in v):
                # fp16's grad scaler skips such steps and retries at a lower scale: give it a few
                self._nonfinite += 1
                if self.scaler.is_enabled() and self._nonfinite < 10:
                    continue
                self._flush_rows()
                bad = next(x for x in v if not math.isfinite(x))   # a mask loss can be the one
                raise self._diverged(f"the loss became {bad} at iteration {it}")
            self._nonfinite = 0
            row = self.loss_row(it, v)
            row["elapsed"] = el
            rows.append(row)
            if self.is_main:
                self.history.append(row)
                if it % self.cfg.log_every == 0:
                    self._pending_rows.append(row)
        queued.clear()
        queued_at.clear()
        return rows

    def _truncate_logs(self) -> None:
        p = self.dir / "loss.csv"
        if not p.exists():
            return
        with open(p, newline="") as f:
            rows = list(csv.DictReader(f))
        keep = [r for r in rows if int(r["iteration"]) <= self.iteration]
        if len(keep) != len(rows) and rows:
            buf = io.StringIO()
            w = csv.DictWriter(buf, fieldnames=list(rows[0].keys()))
            w.writeheader()
            w.writerows(keep)
            atomic_write_bytes(p, buf.getvalue().encode())
        self.history = [{k: float(v) if k != "iteration" else int(v) for k, v in r.items() if v != ""} for r in keep]

    def config_dict(self, sha: Optional[str] = None) -> Dict[str, Any]:
        def ident(fs: FaceSet, path: str) -> Dict[str, Any]:
            return {"name": fs.name, "faces_dir": str(Path(path).resolve()), "faces": len(fs),
                    "embedding_centroid": None if fs.centroid is None else [round(float(v), 6) for v in fs.centroid]}
        return {"architecture": self.arch, "model_args": self.margs, "resolution": self.res,
                "coverage": self.coverage, "has_mask": bool(self.model.has_mask),
                "identities": {"a": ident(self.a, self.cfg.faces_a), "b": ident(self.b, self.cfg.faces_b)},
                "input": "RGB float [0,1], NCHW, central `coverage` of an aligned crop resized to resolution",
                "training": {"lr": self.lr, "batch_size": self.cfg.batch_size, "world_size": self.world,
                             "loss": asdict(self.cfg.loss), "augment": asdict(self.cfg.augment),
                             "uniform_yaw": self.cfg.uniform_yaw, "freeze_encoder": self.cfg.freeze_encoder},
                "initialised_from": self.init_from}

    def save(self, reason: str = "periodic") -> None:
        # every rank holds the same weights, so every rank reaches the same verdict (no collective left hanging)
        if not bool(torch.stack([torch.isfinite(p).all() for p in self.model.parameters()]).all()):
            raise self._diverged(f"the weights hold NaN/inf at iteration {self.iteration}")
        gens = [_rng_b64(self.gen.get_state())]
        if self.distributed:
            import torch.distributed as dist
            allg: List[Any] = [None] * self.world
            dist.all_gather_object(allg, gens[0])
            gens = allg
        if not self.is_main:
            return
        self._flush_rows()
        better = False
        if self.cfg.keep_best:      # the rows since the last save sit at the end of the history
            since = [r["loss_a"] + r["loss_b"] for r in
                     itertools.takewhile(lambda r: r["iteration"] > (self.last_saved or 0), reversed(self.history))]
            better = bool(since) and (self.best is None or sum(since) / len(since) < self.best["loss"])
        if better:      # faceswap backs up when the loss improves: best/ survives a later collapse
            self.best = {"iteration": self.iteration, "loss": round(sum(since) / len(since), 6)}
        state = {"iteration": self.iteration, "elapsed": self.elapsed_before + self._run_elapsed(),
                 "saved_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "reason": reason,
                 "architecture": self.arch, "world_size": self.world,
                 "rng": {"generators": gens, "torch": _rng_b64(torch.get_rng_state())},
                 "last_loss": self.history[-1] if self.history else None,
                 "identity_checks": self.identity_log[-20:], "best": self.best}
        weights = {k: v.contiguous() for k, v in self.model.state_dict().items()}
        optim = mio.optimizer_tensors(self.opt, self.param_names)
        mio.save_checkpoint(self.dir, weights, optim, state, self.config_dict())
        self.last_saved = self.iteration
        if self.cfg.snapshot_every and self.iteration % self.cfg.snapshot_every == 0:
            mio.snapshot(self.dir, self.dir / "snapshots" / f"{self.iteration:08d}")
        if better:
            mio.snapshot(self.dir, self.dir / "best")

    def _flush_rows(self) -> None:
        if not self._pending_rows:
            return
        p = self.dir / "loss.csv"
        self.dir.mkdir(parents=True, exist_ok=True)
        fields = list(self._pending_rows[0].keys())
        new = not p.exists()
        with open(p, "a", newline="") as f:
            w = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
            if new:
                w.writeheader()
            w.writerows(self._pending_rows)
        self._pending_rows = []

    def _preview_inputs(self, fs: FaceSet) -> torch.Tensor:
        n = min(self.cfg.preview_faces, len(fs))
        idx = torch.linspace(0, len(fs) - 1, n).round().long().to(fs.images.device)
        return center_batch(fs.images[idx], self.res, self.coverage)

    @torch.no_grad()
    def preview(self) -> Optional[Dict[str, Any]]:
        """Write preview.png (rows: A, A->A, A->B, B, B->B, B->A [+ masks]) and run the identity check."""
        if not self.is_main:
            return None
        import cv2
        self.model.eval()
        xa, xb = self._preview_inputs(self.a), self._preview_inputs(self.b)
        rows, labels = [], []
        outs = {}
        for name, x, same, other in (("A", xa, "a", "b"), ("B", xb, "b", "a")):
            rec, _ = self.model(x, decoder=same)
            sw, m = self.model(x, decoder=other)
            outs[name] = sw
            rows += [x, rec.float(), sw.float()]
            labels += [name, f"{name}->{name}", f"{name}->{other.upper()}"]
            if m is not None:
                rows.append(m.float().expand(-1, 3, -1, -1))
                labels.append(f"mask {name}->{other.upper()}")
        n = max(r.shape[0] for r in rows)
        tiles = []
        for r in rows:
            if r.shape[0] < n:
                r = torch.cat([r, r.new_zeros(n - r.shape[0], *r.shape[1:])])
            tiles.append(torch.cat(list(r), 2))  # 3,R,n*R
        grid = (torch.cat(tiles, 1).permute(1, 2, 0).clamp(0, 1).cpu().numpy() * 255).astype(np.uint8)
        lab_w = 90
        canvas = np.full((grid.shape[0], grid.shape[1] + lab_w, 3), 255, np.uint8)
        canvas[:, lab_w:] = grid
        for i, t in enumerate(labels):
            cv2.putText(canvas, t, (4, i * self.res + self.res // 2 + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (0, 0, 0), 1)
        self.dir.mkdir(parents=True, exist_ok=True)
        write_image_atomic(self.dir / "preview.png", canvas)
        if self.cfg.timelapse:
            (self.dir / "timelapse").mkdir(exist_ok=True)
            write_image_atomic(self.dir / "timelapse" / f"{self.iteration:08d}.png", canvas)
        self._flush_rows()
        self.plot_loss()
        res = self.identity_check(outs["A"], outs["B"]) if self.cfg.identity_check else None
        self.model.train()
        return res

    def plot_loss(self) -> None:
        if not self.history:
            return
        try:
            import matplotlib
            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            return
        it = [r["iteration"] for r in self.history]
        fig, ax = plt.subplots(figsize=(7, 3.5), dpi=100)
        for k in ("loss_a", "loss_b", "mask_a", "mask_b"):
            if k in self.history[-1]:
                ax.plot(it, [r.get(k, float("nan")) for r in self.history], label=k, lw=0.8)
        ax.set_xlabel("iteration")
        ax.set_yscale("log")
        ax.legend()
        ax.grid(alpha=0.3)
        buf = io.BytesIO()
        fig.tight_layout()
        fig.savefig(buf, format="png")
        plt.close(fig)
        atomic_write_bytes(self.dir / "loss.png", buf.getvalue())

    def _embed(self, crops: List[np.ndarray]) -> List[Optional[np.ndarray]]:
        if self._analyzer is None:
            from ..faces import FaceAnalyzer
            self._analyzer = FaceAnalyzer()
        out = []
        for c in crops:
            try:
                out.append(self._analyzer.embed_crop(np.ascontiguousarray(c)))
            except Exception:  # noqa: BLE001 - a generated face the recogniser cannot read counts as no answer
                out.append(None)
        return out

    def identity_check(self, a2b: torch.Tensor, b2a: torch.Tensor) -> Optional[Dict[str, Any]]:
        """Swap quality as papers report it (swap.quality): ID retrieval among A, B and every other identity the
        toolkit knows, the dlib distance to the target against 0.6, pose/expression error against the input
        and the detail index (a blur fails), per direction; plus the old share "closer to B than to A"
        (kept in the record, not shown: a blur passes it)."""
        try:
            import dlib  # noqa: F401
        except ImportError:
            return None
        import cv2
        size = max(150, self.res)

        def crops(x):
            arr = (x.float().clamp(0, 1).permute(0, 2, 3, 1).cpu().numpy() * 255).astype(np.uint8)
            return [cv2.resize(a, (size, size), interpolation=cv2.INTER_CUBIC) for a in arr]

        ca, cb = self.a.centroid, self.b.centroid
        if ca is None or cb is None:
            ea = [e for e in self._embed(crops(self._preview_inputs(self.a))) if e is not None]
            eb = [e for e in self._embed(crops(self._preview_inputs(self.b))) if e is not None]
            if not ea or not eb:
                return None
            ca, cb = (np.mean(ea, 0) if ca is None else ca), (np.mean(eb, 0) if cb is None else cb)

        def share(x, target, source):
            es = [e for e in self._embed(crops(x)) if e is not None]
            if not es:
                return None, 0
            closer = [np.linalg.norm(e - target) < np.linalg.norm(e - source) for e in es]
            return float(np.mean(closer)), len(es)

        s_ab, n_ab = share(a2b, cb, ca)
        s_ba, n_ba = share(b2a, ca, cb)
        rec = {"iteration": self.iteration, "a2b_closer_to_b": s_ab, "b2a_closer_to_a": s_ba,
               "faces": n_ab + n_ba}
        from ..quality import Gallery, builtin_gallery, measure_face, summarize

        gallery = Gallery({"A": [ca], "B": [cb]})
        gallery.add_distractors(builtin_gallery())
        fa = self._analyzer
        for key, out, src, target in (("a2b", a2b, self.a, "B"), ("b2a", b2a, self.b, "A")):
            faces = []
            for sw, so in zip(crops(out), crops(self._preview_inputs(src))):
                try:
                    faces.append(measure_face(sw, so, target, gallery, analyzer=fa))
                except Exception:  # noqa: BLE001 - a face dlib cannot read at all is left out (counted below)
                    continue
            q = summarize(faces, gallery)
            rec[key] = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in q.to_dict().items()
                        if k in ("n", "passed", "pass_rate", "id_retrieval", "same_person", "mean_distance",
                                 "mean_pose_error", "mean_expression_error", "mean_sharpness")}
            rec[key]["gallery"] = len(gallery.names)
            rec[key]["summary"] = q.summary()
        self.identity_log.append(rec)
        return rec

    def summary(self, reason: str, done: int, dt: float, first: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
        last = self.history[-1] if self.history else None
        its = done / dt if dt > 0 else 0.0
        return {"model_dir": str(self.dir), "architecture": self.arch, "resolution": self.res,
                "device": str(self.device), "precision": str(self.amp_dtype or "fp32").replace("torch.", ""),
                "world_size": self.world, "stopped_by": reason, "iteration": self.iteration,
                "resumed_from": self.resumed_from, "iterations_run": done, "seconds": round(dt, 2),
                "it_per_s": round(its, 3), "examples_per_s": round(its * self.cfg.batch_size * 2 * self.world, 2),
                "first_loss": first, "last_loss": last,
                "identity_check": self.identity_log[-1] if self.identity_log else None,
                "initialised_from": self.init_from}
