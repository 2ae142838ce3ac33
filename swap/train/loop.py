"""The training loop: shared encoder, one decoder per identity, GPU-batched augmentation, crash-safe
checkpoints, resume, previews, loss log, identity check, DDP via torchrun. Callable from a notebook:

    from swap.train import TrainConfig, train
    summary = train(TrainConfig(faces_a="faces/a", faces_b="faces/b", model_dir="runs/ab", iterations=1000))
"""
from __future__ import annotations

import base64
import csv
import io
import itertools
import math
import os
import signal
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import torch

from ..device import cpu_fast_bf16, resolve_device
from ..errors import InputError
from ..models import create_model, model_args
from ..models import io as mio
from .augment import AugmentConfig, augment_batch, center_batch
from .data import FaceSet, face_yaws, load_faces, uniform_yaw_weights
from .loss import LossConfig, reconstruction_loss


@dataclass
class TrainConfig:
    faces_a: str
    faces_b: str
    model_dir: str
    model: Optional[str] = None            # None: the folder's saved architecture, else "original"
    model_options: Dict[str, Any] = field(default_factory=dict)   # e.g. {"resolution": 128} for hq
    batch_size: int = 16                   # per process (DDP multiplies it by the world size)
    iterations: Optional[int] = None       # total iterations (resume counts those already done)
    time_limit: Optional[float] = None     # seconds for this run
    save_every: int = 250
    preview_every: int = 250
    snapshot_every: int = 0                # also keep a copy at every multiple: snapshots/NNNNNNNN/
    keep_best: bool = False                # also keep best/: the save whose interval had the lowest mean loss
    timelapse: bool = False                # also keep each preview: timelapse/NNNNNNNN.png
    lr: Optional[float] = None             # None: 5e-5 for a new model, the saved rate on resume
    loss: LossConfig = field(default_factory=LossConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    coverage: float = 1.0
    uniform_yaw: bool = False              # draw every 10-degree yaw bin equally often (DeepFaceLab's option)
    load_weights: Optional[str] = None     # a new model starts from this model folder's weights ...
    load_parts: str = "encoder"            # ... its encoder (faceswap's default) or "all"
    freeze_encoder: bool = False           # this run trains the decoders only
    device: str = "auto"                   # auto | cpu | cuda | cuda:N
    precision: str = "auto"                # auto (CUDA: bf16 if supported else fp16; CPU: bf16 with AMX/AVX512-BF16 else fp32) | fp32 | bf16 | fp16
    compile: bool = False
    compile_mode: Optional[str] = None     # torch.compile mode; "reduce-overhead" adds CUDA graphs
    channels_last: Optional[bool] = None   # default: on for CUDA
    seed: int = 0
    identity_check: bool = True
    preview_faces: int = 4
    progress: bool = True
    threads: Optional[int] = None
    log_every: int = 1


# ---- small helpers ------------------------------------------------------------------------------

def nearest_shapes(mine: torch.Tensor, theirs: torch.Tensor, k: int = 10, chunk: int = 2048) -> torch.Tensor:
    """N,min(k, M) indices of the faces in `theirs` whose 68 landmarks are closest to each face in `mine`
    (in chunks: 20k x 20k faces would otherwise be a 1.6 GB distance matrix)."""
    flat = theirs.reshape(len(theirs), -1)
    k = min(k, len(theirs))
    return torch.cat([torch.cdist(m.reshape(len(m), -1), flat).topk(k, largest=False).indices
                      for m in mine.split(chunk)])


class Diverged(InputError):
    """The loss or the weights went NaN/inf: training stops without saving them over the last good checkpoint."""


def _is_oom(e: BaseException) -> bool:
    return isinstance(e, torch.OutOfMemoryError) or (
        isinstance(e, RuntimeError) and ("out of memory" in str(e) or "can't allocate memory" in str(e)))


DEFAULT_LR = 5e-5
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
READ_EVERY_S = 0.5   # CUDA: read the queued steps' losses back this often (each read waits for the GPU)


def resolve_precision(name: str, device: torch.device) -> Optional[torch.dtype]:
    if name not in ("auto", "fp32", "bf16", "fp16"):
        raise InputError(f"unknown precision {name!r}: use auto, fp32, bf16 or fp16")
    if device.type != "cuda":
        if name == "fp16":
            raise InputError("--precision fp16 needs CUDA; use bf16 (or auto) on the CPU")
        return torch.bfloat16 if name == "bf16" or (name == "auto" and cpu_fast_bf16()) else None
    if name == "fp32":
        return None
    if name == "bf16" or (name == "auto" and torch.cuda.is_bf16_supported()):
        return torch.bfloat16
    return torch.float16


class _Pair(torch.nn.Module):
    """One forward for both identities (one encoder pass over A+B) so DDP sees every parameter once."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, xa: torch.Tensor, xb: torch.Tensor):
        z = self.model.encode(torch.cat([xa, xb], 0))
        za, zb = z[: xa.shape[0]], z[xa.shape[0]:]
        fa, ma = self.model.decode(za, "a")
        fb, mb = self.model.decode(zb, "b")
        return fa, ma, fb, mb


def _rng_b64(t: torch.Tensor) -> str:
    return base64.b64encode(t.cpu().numpy().tobytes()).decode()


def _rng_from_b64(s: str) -> torch.Tensor:
    return torch.from_numpy(np.frombuffer(base64.b64decode(s), np.uint8).copy())


class _StopFlag:
    """SIGINT/SIGTERM: finish the step, save, stop. SIGUSR1: save and preview now, then go on (the
    'save now' of faceswap's GUI, for a job running in the background: `kill -USR1 PID`)."""

    def __init__(self):
        self.reason: Optional[str] = None
        self.save_now = False
        self._old: Dict[int, Any] = {}

    def install(self):
        if threading.current_thread() is not threading.main_thread():
            return
        sigs = [signal.SIGINT, signal.SIGTERM] + ([signal.SIGUSR1] if hasattr(signal, "SIGUSR1") else [])
        for sig in sigs:
            self._old[sig] = signal.getsignal(sig)
            signal.signal(sig, self._handle)

    def _handle(self, signum, frame):
        if signum == getattr(signal, "SIGUSR1", None):
            self.save_now = True
            return
        if self.reason is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt  # second Ctrl-C: stop now
        self.reason = signal.Signals(signum).name

    def restore(self):
        for sig, h in self._old.items():
            signal.signal(sig, h)


# ---- the trainer --------------------------------------------------------------------------------

class Trainer:
    def __init__(self, cfg: TrainConfig):
        self.cfg = cfg
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        self.device = resolve_device(cfg.device, self.local_rank)
        if cfg.threads and self.device.type == "cpu":
            torch.set_num_threads(cfg.threads)
        self.distributed = self.world > 1
        if self.distributed:
            import torch.distributed as dist
            if not dist.is_initialized():
                dist.init_process_group("nccl" if self.device.type == "cuda" else "gloo")
            if self.device.type == "cuda":
                torch.cuda.set_device(self.device)
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True   # fixed shapes all run long: time the conv algorithms once
        self.is_main = self.rank == 0
        self.dir = Path(cfg.model_dir)
        self.amp_dtype = resolve_precision(cfg.precision, self.device)
        # channels_last pays on CUDA and with CPU bf16 (oneDNN's bf16 kernels: 1.2-1.45x on hq@128); fp32 CPU loses
        self.channels_last = (cfg.channels_last if cfg.channels_last is not None
                              else self.device.type == "cuda" or self.amp_dtype is not None)

        existing = mio.find_checkpoint(self.dir) if self.dir.exists() else None
        saved_cfg = mio.read_config(self.dir) if existing else None
        if saved_cfg:
            arch = saved_cfg["architecture"]
            if cfg.model and cfg.model != arch:
                raise InputError(f"{self.dir} holds a {arch!r} model; pass --model {arch} or use a new folder")
            margs = dict(saved_cfg["model_args"])
            self.coverage = float(saved_cfg.get("coverage", cfg.coverage))
        else:
            src_cfg = mio.read_config(Path(cfg.load_weights)) if cfg.load_weights else None
            arch = cfg.model or (src_cfg["architecture"] if src_cfg else "original")
            # starting from another model: its shape, unless given (a mismatch is then one clear error)
            same = src_cfg is not None and not cfg.model_options and arch == src_cfg["architecture"]
            margs = dict(src_cfg["model_args"]) if same else model_args(arch, **cfg.model_options)
            self.coverage = cfg.coverage
        if cfg.load_weights and existing:
            raise InputError(f"--load-weights starts a new model, but {self.dir} already holds one (iteration "
                             f"{existing['state'].get('iteration')}): use a new folder")
        self.arch, self.margs = arch, margs
        torch.manual_seed(cfg.seed)  # same initial weights for a given seed (DDP also broadcasts rank 0's)
        self.model = create_model(arch, **margs).to(self.device)
        self.init_from = (saved_cfg or {}).get("initialised_from")
        if cfg.load_weights:
            self.init_from = mio.load_pretrained(self.model, Path(cfg.load_weights), arch, cfg.load_parts)
        if cfg.freeze_encoder:      # no gradients: Adam skips them, DDP does not reduce them
            for prm in self.model.encoder.parameters():
                prm.requires_grad_(False)
        if self.channels_last:  # before the optimizer exists, so its state follows the params' layout
            self.model = self.model.to(memory_format=torch.channels_last)
        self.res = self.model.resolution
        self.augcfg = AugmentConfig(**{**asdict(cfg.augment), "coverage": self.coverage})

        self.a = load_faces(Path(cfg.faces_a), self.res, self.coverage).to(self.device)
        self.b = load_faces(Path(cfg.faces_b), self.res, self.coverage).to(self.device)
        # --uniform-yaw: per-face draw weights (None: uniform over faces, the plain randint below)
        self.draw = ({side: torch.from_numpy(uniform_yaw_weights(face_yaws(fs))).float().to(self.device)
                      for side, fs in (("a", self.a), ("b", self.b))} if cfg.uniform_yaw else None)
        # warp-to-landmarks partners: each face's closest-shaped faces of the other identity (faceswap: 10)
        self.near = ({"a": nearest_shapes(self.a.landmarks, self.b.landmarks),
                      "b": nearest_shapes(self.b.landmarks, self.a.landmarks)}
                     if self.augcfg.warp and self.augcfg.warp_to_landmarks else None)

        self.opt = torch.optim.Adam(self.model.parameters(), lr=cfg.lr or DEFAULT_LR, betas=(0.5, 0.999),
                                    fused=True)  # one kernel for all params (CUDA and CPU)
        self.param_names = {i: n for i, (n, _) in enumerate(self.model.named_parameters())}
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp_dtype == torch.float16)
        self.gen = torch.Generator(device=self.device)
        self.gen.manual_seed(cfg.seed * 1000 + self.rank)
        torch.manual_seed(cfg.seed)
        self.iteration = 0
        self.best: Optional[Dict[str, Any]] = None     # --keep-best: {"iteration", "loss"} of best/
        self.elapsed_before = 0.0
        self.history: List[Dict[str, Any]] = []
        self.identity_log: List[Dict[str, Any]] = []
        self.resumed_from: Optional[int] = None
        if existing:
            self._resume(existing)
        if cfg.lr is not None:   # asked for: also on resume (fine-tuning at a lower rate)
            for g in self.opt.param_groups:
                g["lr"] = cfg.lr
        self.lr = self.opt.param_groups[0]["lr"]
        self.last_saved: Optional[int] = self.iteration if existing else None
        self._nonfinite = 0
        self.pair = _Pair(self.model)
        if self.distributed:
            from torch.nn.parallel import DistributedDataParallel as DDP
            self.pair = DDP(self.pair, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        if cfg.compile_mode is not None and cfg.compile_mode not in COMPILE_MODES:
            raise InputError(f"unknown compile mode {cfg.compile_mode!r}: use one of {', '.join(COMPILE_MODES)}")
        self.compiled = cfg.compile or cfg.compile_mode is not None
        self.step_fn = torch.compile(self._step, mode=cfg.compile_mode) if self.compiled else self._step
        self._analyzer = None
        self._pending_rows: List[Dict[str, Any]] = []
        # a read of the losses waits for the device: free on the CPU, a pipeline stall on CUDA
        self.read_each_step = self.device.type != "cuda"
        # DDP ranks agree on stopping (signal, time limit) through a collective the host waits for: every step
        # on the CPU, every 20 on CUDA (stopping at --iterations needs no agreement: ranks count alike)
        self.stop_check_every = 1 if self.read_each_step else 20

    # -- checkpoint -----------------------------------------------------------------------------
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
            from ..video import atomic_write_bytes
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

    def _kept(self) -> str:
        return (f"the model folder keeps iteration {self.last_saved}" if self.last_saved is not None
                else "nothing was saved")

    def _diverged(self, what: str) -> Diverged:
        hint = f"lower --lr (now {self.lr:g})" + (", or train with --precision fp32" if self.amp_dtype else "")
        return Diverged(f"training diverged: {what}; {self._kept()}: {hint}")

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

    # -- one step -------------------------------------------------------------------------------
    def _draw(self, fs: FaceSet, side: str) -> torch.Tensor:
        """A batch of face indices: uniform over the faces, or with --uniform-yaw over the yaw bins."""
        if self.draw is not None:
            idx = torch.multinomial(self.draw[side], self.cfg.batch_size, replacement=True, generator=self.gen)
        else:
            idx = torch.randint(0, len(fs), (self.cfg.batch_size,), generator=self.gen, device=self.gen.device)
        return idx.to(fs.images.device)

    def _sample(self, fs: FaceSet, other: FaceSet, side: str):
        idx = self._draw(fs, side)
        lms = None
        if self.near is not None:
            near = self.near[side]
            pick = torch.randint(0, near.shape[1], (len(idx),), generator=self.gen, device=self.gen.device)
            lms = (fs.landmarks[idx], other.landmarks[near[idx, pick.to(near.device)]])
        return augment_batch(fs.images[idx], fs.masks[idx], self.res, self.augcfg, self.gen, lms)

    def _step(self, wa, ta, ma, wb, tb, mb):
        with torch.autocast(self.device.type, dtype=self.amp_dtype or torch.float32,
                            enabled=self.amp_dtype is not None):
            fa, pma, fb, pmb = self.pair(wa, wb)
        la = reconstruction_loss(fa, ta, ma, self.cfg.loss, pma)
        lb = reconstruction_loss(fb, tb, mb, self.cfg.loss, pmb)
        return la, lb

    def train_step_async(self) -> torch.Tensor:
        """One optimisation step. Returns its losses [face A, face B(, mask A, mask B)] as a tensor left on
        the device: nothing is read back, so on CUDA Python queues the next step while this one runs."""
        self.model.train()
        if self.compiled:
            torch.compiler.cudagraph_mark_step_begin()   # last step's CUDA-graph outputs may be reused
        self.opt.zero_grad(set_to_none=True)
        wa, ta, ma = self._sample(self.a, self.b, "a")
        wb, tb, mb = self._sample(self.b, self.a, "b")
        if self.channels_last:
            wa, wb = wa.contiguous(memory_format=torch.channels_last), wb.contiguous(memory_format=torch.channels_last)
        la, lb = self.step_fn(wa, ta, ma, wb, tb, mb)
        self.scaler.scale(la["loss"] + lb["loss"]).backward()
        self.scaler.step(self.opt)
        self.scaler.update()
        self.iteration += 1
        parts = [la["face"], lb["face"]] + ([la["mask"], lb["mask"]] if "mask" in la else [])
        return torch.stack(parts).detach()   # a copy: survives the next CUDA-graph replay

    @staticmethod
    def loss_row(iteration: int, values: List[float]) -> Dict[str, Any]:
        row: Dict[str, Any] = {"iteration": iteration, "loss_a": values[0], "loss_b": values[1]}
        if len(values) == 4:
            row["mask_a"], row["mask_b"] = values[2], values[3]
        return row

    def train_step(self) -> Dict[str, Any]:
        """One step, its losses read back at once (a loss.csv row without `elapsed`)."""
        losses = self.train_step_async()
        return self.loss_row(self.iteration, losses.tolist())

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

    # -- outputs --------------------------------------------------------------------------------
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
        from ..video import write_image_atomic
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
        from ..video import atomic_write_bytes
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
        """Share of A->B outputs the dlib recogniser puts closer to B's centroid than to A's (and B->A)."""
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
        self.identity_log.append(rec)
        return rec

    # -- run ------------------------------------------------------------------------------------
    def _run_elapsed(self) -> float:
        return time.perf_counter() - self._t0 if hasattr(self, "_t0") else 0.0

    def _agree(self, local: Optional[str], save_now: bool) -> Tuple[Optional[str], bool]:
        """(stop reason, save now) as all ranks see them: a signal sent to one rank acts on all of them,
        and a save (a collective) starts on every rank at the same step."""
        if not self.distributed:
            return local, save_now
        import torch.distributed as dist
        codes = {None: 0, "iterations": 1, "time limit": 2, "SIGINT": 3, "SIGTERM": 4}
        t = torch.tensor([codes.get(local, 4), int(save_now)],
                         device=self.device if self.device.type == "cuda" else "cpu")
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        inv = {v: k for k, v in codes.items()}
        return inv[int(t[0].item())], bool(t[1].item())

    def run(self) -> Dict[str, Any]:
        cfg = self.cfg
        if cfg.iterations is None and cfg.time_limit is None:
            raise InputError("give a stop condition: --iterations N and/or --time-limit")
        if cfg.iterations is not None and self.iteration >= cfg.iterations:
            return self.summary("already at --iterations", 0, 0.0)
        stop = _StopFlag()
        stop.install()
        self._t0 = time.perf_counter()
        start_it = self.iteration
        first_loss = None
        step_time = 0.0
        queued: List[Any] = []          # (iteration, losses still on the device)
        queued_at: List[float] = []     # their elapsed seconds
        last_read = time.perf_counter()
        reason = None
        progress = None
        task = None
        if self.is_main and cfg.progress:
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
            progress = Progress(TextColumn("[bold]train[/]"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                                TextColumn("{task.fields[loss]}"), TextColumn("{task.fields[speed]}"),
                                TimeElapsedColumn(), TimeRemainingColumn(), transient=False)
            progress.start()
            task = progress.add_task("train", total=cfg.iterations, completed=self.iteration, loss="", speed="")
        try:
            while True:
                local = stop.reason
                at_end = cfg.iterations is not None and self.iteration >= cfg.iterations   # alike on all ranks
                if local is None and at_end:
                    local = "iterations"
                # don't start a step predicted to end past the limit (a CPU step takes seconds);
                # at least one step per run, so a short limit still makes progress
                if local is None and cfg.time_limit is not None and (
                        self._run_elapsed() + (step_time if self.iteration > start_it else 0.0) >= cfg.time_limit):
                    local = "time limit"
                save_now = False
                if not self.distributed or at_end or self.iteration % self.stop_check_every == 0:
                    reason, save_now = self._agree(local, stop.save_now)
                if reason:
                    break
                if save_now and self.iteration > start_it:
                    stop.save_now = False
                    if queued:
                        self._read_losses(queued, queued_at)
                    self.preview()
                    self.save("requested")
                    msg = f"saved iteration {self.iteration} and preview.png (SIGUSR1)"
                    if progress is not None:
                        progress.console.print(msg)
                    elif self.is_main:
                        print(msg, flush=True)
                t_step = time.perf_counter()
                try:
                    queued.append((self.iteration + 1, self.train_step_async()))
                except RuntimeError as e:   # torch.OutOfMemoryError is one
                    if not _is_oom(e):
                        raise
                    if self.device.type == "cuda":
                        torch.cuda.empty_cache()
                    raise InputError(f"out of {self.device.type.upper()} memory at --batch-size {cfg.batch_size}"
                                     f"{' per process' if self.distributed else ''}: lower it (or --resolution); "
                                     f"{self._kept()}") from None
                step_time = time.perf_counter() - t_step
                queued_at.append(round(self.elapsed_before + self._run_elapsed(), 3))
                preview_due = bool(cfg.preview_every) and self.iteration % cfg.preview_every == 0
                save_due = any(n and self.iteration % n == 0 for n in (cfg.save_every, cfg.snapshot_every))
                # CPU: read every step (free). CUDA: one read per READ_EVERY_S, so the GPU never waits on Python
                if (self.read_each_step or preview_due or save_due
                        or time.perf_counter() - last_read >= READ_EVERY_S):
                    rows = self._read_losses(queued, queued_at)
                    last_read = time.perf_counter()
                    first_loss = first_loss or (rows[0] if rows else None)
                    if progress is not None and rows:
                        row, dt = rows[-1], self._run_elapsed()
                        its = (self.iteration - start_it) / max(dt, 1e-9)
                        ex = its * cfg.batch_size * 2 * self.world
                        progress.update(task, completed=self.iteration,
                                        loss=f"A {row['loss_a']:.4f} B {row['loss_b']:.4f}",
                                        speed=f"{its:.2f} it/s {ex:.1f} ex/s")
                if preview_due:
                    r = self.preview()
                    if r and progress is not None:
                        progress.console.print(f"identity check @ {self.iteration}: A->B closer to B "
                                               f"{r['a2b_closer_to_b']}, B->A closer to A {r['b2a_closer_to_a']}")
                if save_due:
                    self.save("periodic")
        finally:
            if progress is not None:
                progress.stop()
            stop.restore()
        if queued:   # the steps since the last read
            rows = self._read_losses(queued, queued_at)
            first_loss = first_loss or (rows[0] if rows else None)
        dt = self._run_elapsed()
        done = self.iteration - start_it
        if done:
            if self.iteration % max(cfg.preview_every, 1) != 0 or not cfg.preview_every:
                self.preview()
            self.save(reason if reason in ("SIGINT", "SIGTERM") else "end")
        return self.summary(reason or "", done, dt, first_loss)

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

    def close(self) -> None:
        if self.distributed:
            import torch.distributed as dist
            if dist.is_initialized():
                dist.barrier()
                dist.destroy_process_group()


def train(cfg: TrainConfig) -> Dict[str, Any]:
    """Train (or resume) and return the summary dict. The model folder is held for the whole run (rank 0,
    the only writer, holds it; from before the checkpoint is read): a second trainer on it is refused."""
    from contextlib import nullcontext

    from ..lock import folder_lock

    main = int(os.environ.get("RANK", "0")) == 0
    with folder_lock(Path(cfg.model_dir), "veriswap train") if main else nullcontext():
        t = Trainer(cfg)
        try:
            return t.run()
        finally:
            t.close()
