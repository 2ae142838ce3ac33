"""The training loop: shared encoder, one decoder per identity, GPU-batched augmentation, crash-safe
checkpoints, resume, previews, loss log, identity check, DDP via torchrun. Callable from a notebook:

    from swap.train import TrainConfig, train
    summary = train(TrainConfig(faces_a="faces/a", faces_b="faces/b", model_dir="runs/ab", iterations=1000))
"""
from __future__ import annotations

import os
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import torch

from ..device import resolve_device
from ..errors import InputError
from ..models import checkpoint as mio
from ..models import create_model, model_args
from .augment import AugmentConfig, augment_batch
from .config import DEFAULT_LR, TrainConfig
from .data import FaceSet, face_yaws, load_faces, uniform_yaw_weights
from .loss import reconstruction_loss
from .outputs import TrainerOutputs
from .setup import Diverged, _is_oom, _Pair, _StopFlag, nearest_shapes, resolve_precision

READ_EVERY_S = 0.5   # CUDA: read the queued steps' losses back this often (each read waits for the GPU)

__all__ = ["READ_EVERY_S", "Trainer", "TrainConfig", "resolve_precision", "train"]


class Trainer(TrainerOutputs):
    """One training run on one process (DDP: one per GPU under torchrun). `run()` trains until a stop
    condition; `train_step()` / `save()` / `preview()` step it by hand."""

    def __init__(self, cfg: TrainConfig):
        cfg.check(stop=False)
        self.cfg = cfg
        self._init_device()
        self.dir = Path(cfg.model_dir)
        existing = mio.find_checkpoint(self.dir) if self.dir.exists() else None
        self._init_model(existing)
        self._init_data()
        self._init_optimizer(existing)
        self._init_step()

    def _init_device(self) -> None:
        """Rank, device, process group, precision and memory layout."""
        cfg = self.cfg
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
        self.amp_dtype = resolve_precision(cfg.precision, self.device)
        # channels_last pays on CUDA and with CPU bf16 (oneDNN's bf16 kernels: 1.2-1.45x on hq@128); fp32 CPU loses
        self.channels_last = (cfg.channels_last if cfg.channels_last is not None
                              else self.device.type == "cuda" or self.amp_dtype is not None)

    def _init_model(self, existing: Optional[Dict[str, Any]]) -> None:
        """The architecture and its arguments (the folder's, another model's, or asked for) and the model."""
        cfg = self.cfg
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
        try:
            self.model = create_model(arch, **margs).to(self.device)
        except InputError as e:
            if not saved_cfg:
                raise
            raise InputError(f"{self.dir / mio.CONFIG}: field model_args: {e}") from None
        self.init_from = (saved_cfg or {}).get("initialised_from")
        if cfg.load_weights:
            self.init_from = mio.load_pretrained(self.model, Path(cfg.load_weights), arch, cfg.load_parts)
        if cfg.freeze_encoder:      # no gradients: Adam skips them, DDP does not reduce them
            for prm in self.model.encoder.parameters():
                prm.requires_grad_(False)
        if self.channels_last:  # before the optimizer exists, so its state follows the params' layout
            self.model = self.model.to(memory_format=torch.channels_last)
        self.res = self.model.resolution

    def _init_data(self) -> None:
        """Both faces folders on the device, the yaw-bin draw weights and the warp-to-landmarks partners."""
        cfg = self.cfg
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

    def _init_optimizer(self, existing: Optional[Dict[str, Any]]) -> None:
        """Adam, the grad scaler, the sampling generator, and the saved state of a resumed run."""
        cfg = self.cfg
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

    def _init_step(self) -> None:
        """The step function (DDP-wrapped, compiled if asked) and how often the host reads back."""
        cfg = self.cfg
        self._nonfinite = 0
        self.pair = _Pair(self.model)
        if self.distributed:
            from torch.nn.parallel import DistributedDataParallel as DDP
            self.pair = DDP(self.pair, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        self.compiled = cfg.compile or cfg.compile_mode is not None
        self.step_fn = torch.compile(self._step, mode=cfg.compile_mode) if self.compiled else self._step
        self._analyzer = None
        self._pending_rows: List[Dict[str, Any]] = []
        # a read of the losses waits for the device: free on the CPU, a pipeline stall on CUDA
        self.read_each_step = self.device.type != "cuda"
        # DDP ranks agree on stopping (signal, time limit) through a collective the host waits for: every step
        # on the CPU, every 20 on CUDA (stopping at --iterations needs no agreement: ranks count alike)
        self.stop_check_every = 1 if self.read_each_step else 20

    def _kept(self) -> str:
        return (f"the model folder keeps iteration {self.last_saved}" if self.last_saved is not None
                else "nothing was saved")

    def _diverged(self, what: str) -> Diverged:
        hint = f"lower --lr (now {self.lr:g})" + (", or train with --precision fp32" if self.amp_dtype else "")
        return Diverged(f"training diverged: {what}; {self._kept()}: {hint}")

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

    def _progress_bar(self):
        """rich's bar on the main process (None elsewhere or with progress off): (bar, task)."""
        if not (self.is_main and self.cfg.progress):
            return None, None
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
        bar = Progress(TextColumn("[bold]train[/]"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                       TextColumn("{task.fields[loss]}"), TextColumn("{task.fields[speed]}"),
                       TimeElapsedColumn(), TimeRemainingColumn(), transient=False)
        bar.start()
        return bar, bar.add_task("train", total=self.cfg.iterations, completed=self.iteration, loss="", speed="")

    def _local_stop(self, stop: _StopFlag, start_it: int, step_time: float) -> Tuple[Optional[str], bool]:
        """(why this process would stop now, whether it is at --iterations)."""
        cfg = self.cfg
        local = stop.reason
        at_end = cfg.iterations is not None and self.iteration >= cfg.iterations   # alike on all ranks
        if local is None and at_end:
            local = "iterations"
        # don't start a step predicted to end past the limit (a CPU step takes seconds);
        # at least one step per run, so a short limit still makes progress
        if local is None and cfg.time_limit is not None and (
                self._run_elapsed() + (step_time if self.iteration > start_it else 0.0) >= cfg.time_limit):
            local = "time limit"
        return local, at_end

    def _save_requested(self, queued: List[Any], queued_at: List[float], bar) -> None:
        """SIGUSR1: preview and save now, then go on."""
        if queued:
            self._read_losses(queued, queued_at)
        self.preview()
        self.save("requested")
        msg = f"saved iteration {self.iteration} and preview.png (SIGUSR1)"
        if bar is not None:
            bar.console.print(msg)
        elif self.is_main:
            print(msg, flush=True)

    def _queue_step(self, queued: List[Any]) -> None:
        """One step queued on the device; out of memory is one clear error naming --batch-size."""
        try:
            queued.append((self.iteration + 1, self.train_step_async()))
        except RuntimeError as e:   # torch.OutOfMemoryError is one
            if not _is_oom(e):
                raise
            if self.device.type == "cuda":
                torch.cuda.empty_cache()
            raise InputError(f"out of {self.device.type.upper()} memory at --batch-size {self.cfg.batch_size}"
                             f"{' per process' if self.distributed else ''}: lower it (or --resolution); "
                             f"{self._kept()}") from None

    def _show(self, bar, task, rows: List[Dict[str, Any]], start_it: int) -> None:
        if bar is None or not rows:
            return
        row, dt = rows[-1], self._run_elapsed()
        its = (self.iteration - start_it) / max(dt, 1e-9)
        ex = its * self.cfg.batch_size * 2 * self.world
        bar.update(task, completed=self.iteration, loss=f"A {row['loss_a']:.4f} B {row['loss_b']:.4f}",
                   speed=f"{its:.2f} it/s {ex:.1f} ex/s")

    def _loop(self, stop: _StopFlag, bar, task, queued: List[Any], queued_at: List[float]):
        """Step until a stop condition; (reason, first loss row read)."""
        cfg = self.cfg
        start_it, step_time, first_loss, reason = self.iteration, 0.0, None, None
        last_read = time.perf_counter()
        while True:
            local, at_end = self._local_stop(stop, start_it, step_time)
            save_now = False
            if not self.distributed or at_end or self.iteration % self.stop_check_every == 0:
                reason, save_now = self._agree(local, stop.save_now)
            if reason:
                return reason, first_loss
            if save_now and self.iteration > start_it:
                stop.save_now = False
                self._save_requested(queued, queued_at, bar)
            t_step = time.perf_counter()
            self._queue_step(queued)
            step_time = time.perf_counter() - t_step
            queued_at.append(round(self.elapsed_before + self._run_elapsed(), 3))
            preview_due = bool(cfg.preview_every) and self.iteration % cfg.preview_every == 0
            save_due = any(n and self.iteration % n == 0 for n in (cfg.save_every, cfg.snapshot_every))
            # CPU: read every step (free). CUDA: one read per READ_EVERY_S, so the GPU never waits on Python
            if self.read_each_step or preview_due or save_due or time.perf_counter() - last_read >= READ_EVERY_S:
                rows = self._read_losses(queued, queued_at)
                last_read = time.perf_counter()
                first_loss = first_loss or (rows[0] if rows else None)
                self._show(bar, task, rows, start_it)
            if preview_due:
                r = self.preview()
                if r and bar is not None:
                    from ..quality import identity_check_line
                    bar.console.print(f"@ {self.iteration}: {identity_check_line(r)}")
            if save_due:
                self.save("periodic")

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
        queued: List[Any] = []          # (iteration, losses still on the device)
        queued_at: List[float] = []     # their elapsed seconds
        bar, task = self._progress_bar()
        try:
            reason, first_loss = self._loop(stop, bar, task, queued, queued_at)
        finally:
            if bar is not None:
                bar.stop()
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

    cfg.check()
    main = int(os.environ.get("RANK", "0")) == 0
    with folder_lock(Path(cfg.model_dir), "veriswap train") if main else nullcontext():
        # a killed save's temp files (`.model.safetensors.xxxx.tmp`, ...): ours, and stale now that we hold the folder
        stale = mio.remove_stale_temps(Path(cfg.model_dir)) if main else (0, 0)
        if stale[0]:
            print(f"removed {stale[0]} temp file(s) ({stale[1] / 1e6:.1f} MB) left in {cfg.model_dir} by an "
                  "interrupted save", flush=True)
        t = Trainer(cfg)
        try:
            return dict(t.run(), stale_temps_removed={"files": stale[0], "bytes": stale[1]})
        finally:
            t.close()
