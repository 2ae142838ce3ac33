"""`detect train`: fit a timm classifier on a detect dataset (BCE on one logit, AdamW, warm-up + per-epoch decay).

- train split: crops with DFDC-style augmentation (`detect.augment`); with `sbi=True` every real
  training face also yields a self-blended fake (`detect.sbi`) each epoch, so a dataset of real
  videos alone can train a detector;
- after every epoch: loss and AUC on the val split; the best epoch (highest val AUC, then lowest val
  loss) is kept as model.safetensors, and its val scores calibrate the decision threshold
  (maximum balanced accuracy; the EER threshold is recorded too);
- crash-safe and resumable: weights, config, metrics and the training state (model, optimiser,
  scheduler, history) are written atomically after each epoch; a re-run continues after the last
  finished epoch (epochs are seeded by (seed, epoch), so a resumed run equals an uninterrupted one);
- validation that can see generalisation: with SBI the val split also gets self-blended fakes of its real
  faces (fixed per run, so epochs compare), and training stops when val has not improved for `patience`
  epochs; `time_limit` stops before an epoch that would end past it (and, should an epoch overrun it, drops
  that epoch; the first epoch of a new run always finishes); SIGINT / SIGTERM stop at the next
  step with the last finished epoch's checkpoint kept (the unfinished epoch is dropped, so a re-run
  resumes exactly) and a message saying so.

Long module: one training run (splits, model, resume state, the epoch loop with its stop rules, the
per-epoch checkpoint) whose parts share the run's state; split apart, each would take most of the others'.
"""
from __future__ import annotations

import hashlib
import io
import json
import math
import os
import signal
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, List, Optional

import cv2
import numpy as np

from swap.device import resolve_device
from swap.errors import InputError
from swap.lock import folder_lock
from provenance.fsutil import atomic_write_bytes

from . import dataset as D
from . import metrics as M
from .augment import augment
from .model import DetectorConfig, default_input_size, normalization, save_weights
from .sbi import self_blend

STATE = "train_state.pt"


@dataclass
class TrainSettings:
    arch: str = "efficientnet_b0"
    epochs: int = 10
    batch_size: int = 32
    lr: float = 3e-4
    weight_decay: float = 1e-2
    input_size: Optional[int] = None    # default: the architecture's own (timm pretrained_cfg)
    sbi: bool = False
    weights: Optional[str] = None       # local backbone weights file (timm pretrained_cfg_overlay=dict(file=...))
    pretrained: bool = True             # timm pretrained=True (hub download + cache); False: from scratch
    leave_out_methods: List[str] = field(default_factory=list)   # fakes of these methods kept out of train/val
    augment: float = 1.0                # scales every augmentation probability (0 = off)
    workers: int = 0                    # DataLoader worker processes
    seed: int = 0
    steps_per_epoch: Optional[int] = None   # default: one pass; fewer caps it, more draws with replacement
    balance: bool = False               # draw real and fake crops equally (SBI and swaps share the fake half)
    device: str = "auto"
    overwrite: bool = False
    val_sbi: bool = True                # with sbi: self-blended fakes of the val reals in val too
    patience: int = 3                   # stop when val has not improved for this many epochs (0: never)
    time_limit: Optional[float] = None  # seconds: no epoch is started that would end after it

    def check(self) -> None:
        """Ranges (InputError naming the options), before any work."""
        if self.epochs < 1 or self.batch_size < 1 or self.lr <= 0:
            raise InputError("--epochs and --batch-size must be >= 1 and --lr > 0")
        if self.weights is not None and not self.pretrained:
            raise InputError("--weights and --no-pretrained contradict each other")
        if self.patience < 0 or (self.time_limit is not None and self.time_limit <= 0):
            raise InputError("--patience must be >= 0 and --time-limit > 0")

    def resume_key(self, dataset_id: str) -> dict:
        d = {k: getattr(self, k) for k in ("arch", "batch_size", "lr", "weight_decay", "input_size", "sbi",
                                           "weights", "augment", "seed", "steps_per_epoch")}
        d["dataset"] = dataset_id
        if self.balance:
            d["balance"] = True
        d["pretrained"], d["leave_out_methods"] = self.pretrained, sorted(self.leave_out_methods)
        if self.sbi and self.val_sbi:       # val differs (and so do the best epoch and threshold)
            d["val_sbi"] = True
        return d


@dataclass
class TrainSummary:
    out: str = ""
    epochs_run: int = 0
    epochs_resumed: int = 0
    best_epoch: int = -1
    best_val_auc: Optional[float] = None
    threshold: float = 0.5
    train_samples: int = 0
    val_samples: int = 0
    seconds: float = 0.0
    history: List[dict] = field(default_factory=list)
    warnings: List[str] = field(default_factory=list)
    stopped: Optional[str] = None       # why training ended before --epochs (plateau, time limit, signal)
    val_sbi_samples: int = 0


class _Stop:
    """SIGINT / SIGTERM set a reason; the loop stops at the next step. A second SIGINT stops at once."""

    def __init__(self):
        self.reason: Optional[str] = None
        self._old: dict = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.getsignal(sig)
                signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.reason is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.reason = signal.Signals(signum).name

    def __exit__(self, *exc):
        for sig, h in self._old.items():
            signal.signal(sig, h)
        return False


class CropSet:
    """Samples (and, with SBI, self-blended fakes of the real ones) as model-ready arrays."""

    def __init__(self, root: Path, samples: List[D.Sample], size: int, mean, std, train: bool,
                 sbi: bool, strength: float):
        self.root, self.size, self.train, self.strength = Path(root), size, train, strength
        self.mean, self.std = np.asarray(mean, np.float32), np.asarray(std, np.float32)
        self.items = [(s, False) for s in samples]
        if sbi:
            self.items += [(s, True) for s in samples if s.label == 0]
        self.rng = np.random.default_rng(0)

    def reseed(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int):
        import torch

        s, blended = self.items[i]
        bgr = cv2.imread(str(self.root / s.file), cv2.IMREAD_COLOR)
        if bgr is None:
            raise InputError(f"cannot read crop {s.file} (dataset folder damaged? re-run detect dataset)")
        img = bgr[..., ::-1]
        pts = np.asarray(s.landmarks, np.float32) if s.landmarks else None
        label = s.label
        if blended:
            img, _ = self_blend(np.ascontiguousarray(img), pts, self.rng)
            label = 1
        h = img.shape[0]
        if h != self.size:
            img = cv2.resize(img, (self.size, self.size), interpolation=cv2.INTER_AREA if h > self.size else cv2.INTER_LINEAR)
            pts = None if pts is None else pts * (self.size / h)
        if self.train:
            img = augment(np.ascontiguousarray(img), pts, self.rng, self.strength)
        x = (img.astype(np.float32) / 255.0 - self.mean) / self.std
        return torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1))), torch.tensor(float(label))


def _order(train_set: "CropSet", bs: int, steps: int, balance: bool, g) -> dict:
    """DataLoader ordering: a shuffled pass; `steps * bs` draws with replacement when that is more than a pass;
    with `balance` always draws, half
    real, half fake; with SBI and swapped fakes both, each gets a quarter (a dataset of many swaps of few
    people would otherwise be mostly fakes, and its reals too rare to learn what real skin looks like)."""
    if not balance and steps * bs <= len(train_set):
        return {"shuffle": True, "generator": g}
    from torch.utils.data import WeightedRandomSampler

    if not balance:
        return {"sampler": WeightedRandomSampler([1.0] * len(train_set), num_samples=steps * bs, replacement=True,
                                                 generator=g)}
    kinds = ["sbi" if blended else ("fake" if s.label else "real") for s, blended in train_set.items]
    n = {k: kinds.count(k) for k in set(kinds)}
    fake_kinds = [k for k in ("fake", "sbi") if n.get(k)]
    share = {"real": 0.5 if fake_kinds and n.get("real") else 1.0}
    share.update({k: (1.0 - share["real"] if n.get("real") else 1.0) / len(fake_kinds) for k in fake_kinds})
    w = [share[k] / n[k] for k in kinds]
    return {"sampler": WeightedRandomSampler(w, num_samples=steps * bs, replacement=True, generator=g)}


def _worker_init(worker_id: int) -> None:
    import torch

    info = torch.utils.data.get_worker_info()
    info.dataset.reseed(torch.initial_seed() % 2**32)


def dataset_id(ds: D.Dataset) -> str:
    h = hashlib.sha256()
    for s in ds.samples:
        h.update(f"{s.file}:{s.label}:{s.split};".encode())
    return h.hexdigest()[:16]


def _predict(model, loader, device) -> tuple:
    import torch

    model.eval()
    probs, labels, losses = [], [], []
    with torch.inference_mode():
        for x, y in loader:
            logit = model(x.to(device)).float().view(-1)
            losses.append(torch.nn.functional.binary_cross_entropy_with_logits(logit, y.to(device), reduction="sum").item())
            probs.append(torch.sigmoid(logit).cpu().numpy())
            labels.append(y.numpy())
    p = np.concatenate(probs) if probs else np.zeros(0)
    y = np.concatenate(labels).astype(int) if labels else np.zeros(0, int)
    return p, y, (sum(losses) / max(len(p), 1))


def _torch_bytes(obj) -> bytes:
    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def train_detector(dataset_dir: Path, out: Path, settings: Optional[TrainSettings] = None,
                   progress: Optional[Callable[[int, int, int, float], None]] = None,
                   on_epoch: Optional[Callable[[dict], None]] = None) -> TrainSummary:
    """Train (or resume) a detector into `out`. `progress(epoch, step, steps, loss)` per step, `on_epoch(h)`
    after each finished epoch (its history entry). The folder is held while it is written: a second training
    into it is refused (swap.lock)."""
    if Path(out).exists() and not Path(out).is_dir():
        raise InputError(f"output is not a folder: {out}")
    with folder_lock(Path(out), "veriswap detect train"), _Stop() as stop:
        return _train_detector(dataset_dir, out, settings, progress, on_epoch, stop)


def _splits(ds, s: "TrainSettings", dataset_dir: Path, summary: "TrainSummary"):
    """The train and val samples (val = train, with a warning, when the dataset has none)."""
    train_s, val_s = ds.split("train"), ds.split("val")
    if s.leave_out_methods:
        from .card import method_family

        def out_(x) -> bool:
            m = ds.videos[x.video].method if x.video in ds.videos else None
            return x.label == 1 and (m in s.leave_out_methods or method_family(m) in s.leave_out_methods)

        methods = sorted({v.method or "unknown" for v in ds.videos.values() if v.label == 1})
        for name in s.leave_out_methods:
            if not any(name in (m, method_family(m)) for m in methods):
                raise InputError(f"--leave-out-method {name!r}: no fakes of it in the dataset (methods: "
                                 f"{', '.join(methods) or 'none'}; families: "
                                 f"{', '.join(sorted({method_family(m) for m in methods})) or 'none'})")
        train_s, val_s = [x for x in train_s if not out_(x)], [x for x in val_s if not out_(x)]
    if not train_s:
        raise InputError(f"the dataset has no train split samples: {dataset_dir}")
    n_fake = sum(x.label for x in train_s)
    if n_fake == 0 and not s.sbi:
        raise InputError("the train split has no fake samples: add --fake videos or use --sbi")
    if n_fake == len(train_s):
        raise InputError("the train split has no real samples")
    if not val_s:
        summary.warnings.append("no val split: the threshold is calibrated on the train split (optimistic)")
        val_s = train_s
    return train_s, val_s


def _model(s: "TrainSettings", device, resuming: bool = False, out: Optional[Path] = None):
    """The timm model on `device`, its starting weights the timm way (detect.backbone: hub cache, --weights
    file, or from scratch): (model, backbone source as a dict, input size, mean, std). A resumed run loads
    its own state instead, so the starting weights are not fetched again (their source is read back)."""
    import torch

    from .backbone import BackboneSource, create_backbone

    torch.manual_seed(s.seed)
    if resuming:
        model, _ = create_backbone(s.arch, pretrained=False)
        try:
            old = DetectorConfig.load(out).extra.get("backbone") if out is not None else None
        except InputError:
            old = None
        init_info = old or BackboneSource(s.arch, "unknown").to_dict()
    else:
        model, src = create_backbone(s.arch, pretrained=s.pretrained, weights=s.weights)
        init_info = src.to_dict()
    size = s.input_size or default_input_size(model)
    if not 32 <= size <= 1024:
        raise InputError(f"--input-size must be between 32 and 1024, got {size}")
    mean, std = normalization(model)
    model.to(device)
    if device.type == "cpu":
        torch.set_num_threads(max(1, os.cpu_count() or 1))
    return model, init_info, size, mean, std


def _resume(out: Path, s: "TrainSettings", key: dict, model, opt, sched, summary: "TrainSummary"):
    """An earlier run's state with the same settings: (history, step losses, best, first epoch to run)."""
    import torch

    state_path = out / STATE
    best = {"epoch": -1, "auc": None, "loss": math.inf, "threshold": 0.5, "eer_threshold": None, "val": None}
    if state_path.is_file() and not s.overwrite:
        try:
            st = torch.load(str(state_path), map_location="cpu", weights_only=True)
        except Exception:  # noqa: BLE001 - a damaged state is a bad input, not a crash
            raise InputError(f"training state is unreadable: {state_path} (use --overwrite to start again)") from None
        old = json.loads(st["key"])
        if old != key:
            diff = sorted(k for k in key if old.get(k) != key[k])
            raise InputError(f"{out} holds a training run with other settings ({', '.join(diff)}); "
                             "use another folder or --overwrite")
        model.load_state_dict(st["model"])
        opt.load_state_dict(st["optimizer"])
        sched.load_state_dict(st["scheduler"])
        summary.epochs_resumed = int(st["epoch"]) + 1
        return json.loads(st["history"]), json.loads(st["steps"]), json.loads(st["best"]), summary.epochs_resumed
    if s.overwrite:
        for name in (STATE, "model.safetensors", "config.json", "metrics.json", "loss.csv"):
            (out / name).unlink(missing_ok=True)
    return [], [], best, 0


def _train_epoch(model, loader, opt, sched, loss_fn, device, steps: int, epoch: int, step_losses: List[list],
                 progress: Optional[Callable[[int, int, int, float], None]],
                 halt: Optional[Callable[[], bool]] = None) -> List[float]:
    model.train()
    losses = []
    for i, (x, y) in enumerate(loader):
        if i >= steps or (halt is not None and halt()):
            break
        logit = model(x.to(device)).float().view(-1)
        loss = loss_fn(logit, y.to(device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(float(loss.item()))
        step_losses.append([epoch, len(step_losses), round(losses[-1], 6)])
        if progress:
            progress(epoch, i + 1, steps, losses[-1])
    return losses


def _is_better(best: dict, vauc: Optional[float], vloss: float) -> bool:
    return best["epoch"] < 0 or (vauc is not None and (best["auc"] is None or vauc > best["auc"] + 1e-9)) or \
        (vauc is not None and best["auc"] is not None and abs(vauc - best["auc"]) <= 1e-9 and vloss < best["loss"])


def _save_epoch(out: Path, s: "TrainSettings", ds, epoch: int, size: int, mean, std, best: dict, history: List[dict],
                step_losses: List[list], counts: tuple, init_info, state: dict) -> None:
    """config.json, metrics.json, loss.csv and the resumable state after an epoch."""
    cfg = DetectorConfig(arch=s.arch, input_size=size, mean=[float(v) for v in mean], std=[float(v) for v in std],
                         threshold=float(best["threshold"]),
                         threshold_method="balanced_accuracy" if best["auc"] is not None else "default",
                         eer_threshold=best["eer_threshold"], crop_scale=float(ds.settings.get("scale", 1.3)),
                         crop_size=int(ds.settings.get("size", 256)), sbi=s.sbi, weights_init=s.weights,
                         epochs=epoch + 1, best_epoch=int(best["epoch"]),
                         extra={"backbone": init_info, "dataset": str(Path(ds.root).resolve()),
                                "left_out_methods": sorted(s.leave_out_methods)})
    cfg.save(out)
    metrics = {"history": history, "best_epoch": best["epoch"], "val": best["val"],
               "train_samples": counts[0], "val_samples": counts[1], "settings": asdict(s),
               "weights_init": s.weights, "weights_loaded": init_info}
    atomic_write_bytes(out / "metrics.json", json.dumps(metrics, indent=2).encode())
    csv = "epoch,step,loss\n" + "".join(f"{e},{k},{v}\n" for e, k, v in step_losses)
    atomic_write_bytes(out / "loss.csv", csv.encode(), fsync=False)
    atomic_write_bytes(out / STATE, _torch_bytes({
        "key": json.dumps(state["key"]), "epoch": epoch, "model": state["model"].state_dict(),
        "optimizer": state["opt"].state_dict(), "scheduler": state["sched"].state_dict(),
        "history": json.dumps(history), "steps": json.dumps(step_losses), "best": json.dumps(best)}))


def _plateau(history: List[dict], best: dict, patience: int) -> bool:
    """No better val epoch in the last `patience` epochs (only when val AUC is measurable at all)."""
    if patience <= 0 or not history or all(h.get("val_auc") is None for h in history):
        return False
    return history[-1]["epoch"] - int(best["epoch"]) >= patience


def _train_detector(dataset_dir: Path, out: Path, settings: Optional[TrainSettings],
                    progress: Optional[Callable[[int, int, int, float], None]],
                    on_epoch: Optional[Callable[[dict], None]] = None, stop: Optional[_Stop] = None) -> TrainSummary:
    t0 = time.perf_counter()
    s = settings or TrainSettings()
    s.check()
    ds = D.load(dataset_dir)
    summary = TrainSummary(out=str(out))
    train_s, val_s = _splits(ds, s, dataset_dir, summary)
    import torch
    from torch.utils.data import DataLoader

    device = resolve_device(s.device)
    out = Path(out)
    model, init_info, size, mean, std = _model(s, device, (out / STATE).is_file() and not s.overwrite, out)
    s.input_size = size
    key = s.resume_key(dataset_id(ds))
    train_set = CropSet(ds.root, train_s, size, mean, std, True, s.sbi, s.augment)
    val_set = CropSet(ds.root, val_s, size, mean, std, False, s.sbi and s.val_sbi, 0.0)
    summary.val_sbi_samples = len(val_set) - len(val_s)
    bs = min(s.batch_size, len(train_set))
    steps = len(train_set) // bs
    if s.steps_per_epoch:
        # more steps than one pass: drawn with replacement (SBI makes a new fake at every draw)
        steps = s.steps_per_epoch
    opt = torch.optim.AdamW(model.parameters(), lr=s.lr, weight_decay=s.weight_decay)
    warm = max(1, min(100, steps))
    # warm-up, then x0.8 per epoch: the schedule does not depend on the total epoch count, so a run
    # resumed with a larger --epochs continues exactly where an uninterrupted one would be
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda i: min(1.0, (i + 1) / warm) * 0.8 ** (i // max(steps, 1)))
    history, step_losses, best, start = _resume(out, s, key, model, opt, sched, summary)

    summary.train_samples, summary.val_samples = len(train_set), len(val_set)
    val_loader = DataLoader(val_set, batch_size=max(bs, 64), shuffle=False, num_workers=0)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    stop = stop or _Stop()
    run_epochs: List[float] = []
    over_time = lambda: s.time_limit is not None and time.perf_counter() - t0 >= s.time_limit  # noqa: E731
    for epoch in range(start, s.epochs):
        if _plateau(history, best, s.patience):
            summary.stopped = (f"val plateau: no better val epoch in {s.patience} epochs since epoch "
                               f"{int(best['epoch']) + 1} (--patience {s.patience})")
            break
        if s.time_limit is not None and run_epochs and \
                time.perf_counter() - t0 + float(np.mean(run_epochs)) > s.time_limit:
            summary.stopped = (f"time limit: epoch {epoch + 1} would end after --time-limit {s.time_limit:.0f} s "
                               f"(epochs take ~{np.mean(run_epochs):.0f} s); re-run to go on")
            break
        te = time.perf_counter()
        train_set.reseed(s.seed * 100003 + epoch)
        g = torch.Generator().manual_seed(s.seed * 100003 + epoch)
        loader = DataLoader(train_set, batch_size=bs, drop_last=True, num_workers=s.workers,
                            worker_init_fn=_worker_init if s.workers else None, persistent_workers=False,
                            **_order(train_set, bs, steps, s.balance, g))
        n_steps = len(step_losses)
        losses = _train_epoch(model, loader, opt, sched, loss_fn, device, steps, epoch, step_losses, progress,
                              halt=lambda: stop.reason is not None or (over_time() and best["epoch"] >= 0))
        if len(losses) < steps:     # interrupted: drop the unfinished epoch, keep the last finished one's checkpoint
            del step_losses[n_steps:]
            why = f"stopped by {stop.reason}" if stop.reason else f"time limit {s.time_limit:.0f} s reached"
            if best["epoch"] < 0:
                raise InputError(f"training {why} before its first epoch finished: nothing saved in {out}")
            kept = (f"the checkpoint after epoch {epoch} is kept in {out}; re-run the same command to resume at "
                    f"epoch {epoch + 1}")
            summary.stopped = f"{why} during epoch {epoch + 1} ({len(losses)} of {steps} steps, dropped): {kept}"
            break
        val_set.reseed(s.seed * 100003 + 99991)    # the same self-blended val fakes every epoch
        best = _validate(model, val_loader, device, epoch, losses, opt.param_groups[0]["lr"], te, history, best, out)
        _save_epoch(out, s, ds, epoch, size, mean, std, best, history, step_losses, (len(train_set), len(val_set)),
                    init_info, {"key": key, "model": model, "opt": opt, "sched": sched})
        summary.epochs_run += 1
        run_epochs.append(time.perf_counter() - te)
        if on_epoch is not None:
            on_epoch({**history[-1], "best": int(best["epoch"]) == epoch})
    return _finish(summary, history, best, t0, init_info)


def _validate(model, val_loader, device, epoch: int, losses: List[float], lr: float, te: float,
              history: List[dict], best: dict, out: Path) -> dict:
    """Score the val split after an epoch, append it to `history`, and save the weights when it is the best
    epoch so far (its threshold calibrated on val). Returns the best epoch's record."""
    p, y, vloss = _predict(model, val_loader, device)
    vauc = M.auc(y, p)
    history.append({"epoch": epoch, "train_loss": round(float(np.mean(losses)), 6) if losses else None,
                    "val_loss": round(vloss, 6), "val_auc": None if vauc is None else round(vauc, 6),
                    "lr": lr, "seconds": round(time.perf_counter() - te, 2)})
    if not _is_better(best, vauc, vloss):
        return best
    thr, _ = M.best_threshold(y, p)
    _, et = M.eer(y, p)
    save_weights(model, out / "model.safetensors")
    return {"epoch": epoch, "auc": vauc, "loss": vloss, "threshold": thr, "eer_threshold": et,
            "val": M.compute(y, p, thr).to_dict()}


def _finish(summary: TrainSummary, history: List[dict], best: dict, t0: float, init_info) -> TrainSummary:
    summary.history = history
    summary.best_epoch = int(best["epoch"])
    summary.best_val_auc = best["auc"]
    summary.threshold = float(best["threshold"])
    summary.seconds = time.perf_counter() - t0
    if not (init_info or {}).get("pretrained", True):
        summary.warnings.append("trained from scratch (--no-pretrained): random init, and the model card says so; "
                                "pretrained backbones generalise far better")
    return summary
