"""`veriswap train`: thin CLI over `swap.train` (torch is imported inside the command only; registered by
veriswap.cli). The settings are checked by `TrainConfig.check`, before torch loads."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ..errors import InputError
from ..progress import parse_duration  # noqa: F401 - here for callers of swap.train.cli.parse_duration


def train_command(
    faces_a: Path = typer.Option(..., "--faces-a", help="Faces folder of identity A (from `veriswap extract`)."),
    faces_b: Path = typer.Option(..., "--faces-b", help="Faces folder of identity B."),
    model_dir: Path = typer.Option(..., "-m", "--model-dir", help="Model folder (resumed if it holds a checkpoint)."),
    model: Optional[str] = typer.Option(None, "--model", help="original | hq (default: the folder's, else original)."),
    resolution: Optional[int] = typer.Option(None, "--resolution", help="hq: 64-256, multiple of 32 (default 128)."),
    ae_dims: Optional[int] = typer.Option(None, "--ae-dims", help="hq: latent size (default 256)."),
    e_dims: Optional[int] = typer.Option(None, "--e-dims", help="hq: encoder base width (default 64)."),
    d_dims: Optional[int] = typer.Option(None, "--d-dims", help="hq: decoder base width (default 64)."),
    batch_size: int = typer.Option(16, "--batch-size", "-b", help="Faces per identity per step (per process)."),
    iterations: Optional[int] = typer.Option(None, "--iterations", "-n", help="Stop at this total iteration."),
    time_limit: Optional[str] = typer.Option(None, "--time-limit", help="Stop after this long, e.g. 10m, 1h."),
    save_every: int = typer.Option(250, "--save-every"),
    preview_every: int = typer.Option(250, "--preview-every"),
    snapshot_every: int = typer.Option(0, "--snapshot-every", help="Also keep a copy of the model every N "
                                       "iterations in MODEL_DIR/snapshots/NNNNNNNN (a model folder; 0: off)."),
    keep_best: bool = typer.Option(False, "--keep-best", help="Also keep MODEL_DIR/best/: the save whose "
                                   "interval had the lowest mean loss (faceswap backs up when the loss improves)."),
    timelapse: bool = typer.Option(False, "--timelapse", help="Also keep every preview as "
                                   "MODEL_DIR/timelapse/NNNNNNNN.png."),
    lr: Optional[float] = typer.Option(None, "--lr", help="Adam learning rate (default 5e-5; on resume the "
                                       "saved rate unless given)."),
    ssim_weight: float = typer.Option(1.0, "--ssim-weight"),
    l1_weight: float = typer.Option(1.0, "--l1-weight"),
    mse_weight: float = typer.Option(0.0, "--mse-weight", help="MSE term (faceswap/DeepFaceLab's choice); "
                                     "e.g. --l1-weight 0 --mse-weight 1 for SSIM + MSE."),
    mask_weight: float = typer.Option(1.0, "--mask-weight", help="hq: weight of the mask loss."),
    eye_weight: float = typer.Option(3.0, "--eye-weight"),
    mouth_weight: float = typer.Option(2.0, "--mouth-weight"),
    coverage: float = typer.Option(1.0, "--coverage", help="Central share of the aligned crop the model sees."),
    no_warp: bool = typer.Option(False, "--no-warp", help="No random warp of the input (this run): sharpens "
                                 "detail late in training, as faceswap/DeepFaceLab users do."),
    warp_to_landmarks: bool = typer.Option(False, "--warp-to-landmarks", help="Warp each input to the landmarks "
                                           "of a similar face of the other identity instead of randomly."),
    load_weights: Optional[Path] = typer.Option(None, "--load-weights", help="Start a new model from this model "
                                                "folder's encoder (faceswap's --load-weights; DeepFaceLab's "
                                                "pretrained model)."),
    load_all: bool = typer.Option(False, "--load-all", help="With --load-weights: take the decoders too."),
    freeze_encoder: bool = typer.Option(False, "--freeze-encoder", help="Train the decoders only (this run)."),
    uniform_yaw: bool = typer.Option(False, "--uniform-yaw", help="Draw every 10-degree head-yaw bin equally "
                                     "often, so rare profile faces train as much as frontal ones."),
    no_flip: bool = typer.Option(False, "--no-flip", help="No random horizontal flips (asymmetric faces)."),
    no_color_aug: bool = typer.Option(False, "--no-color-aug", help="No L*a*b lightness/colour jitter."),
    device: str = typer.Option("auto", "--device", help="auto | cpu | cuda | cuda:N"),
    precision: str = typer.Option("auto", "--precision", help="auto | fp32 | bf16 | fp16 (auto: bf16/fp16 on CUDA, bf16 on CPUs with AMX or AVX512-BF16, else fp32)."),
    compile: bool = typer.Option(False, "--compile/--no-compile", help="torch.compile the training step."),
    compile_mode: Optional[str] = typer.Option(None, "--compile-mode", help="torch.compile mode (implies --compile): "
                                               "default | reduce-overhead (CUDA graphs) | max-autotune | "
                                               "max-autotune-no-cudagraphs."),
    identity_check: bool = typer.Option(True, "--identity-check/--no-identity-check",
                                        help="Embed A->B previews with dlib and log who they look like."),
    seed: int = typer.Option(0, "--seed"),
    threads: Optional[int] = typer.Option(None, "--threads", help="CPU threads for torch."),
    no_progress: bool = typer.Option(False, "--no-progress"),
) -> None:
    """Train a shared-encoder / two-decoder face-swap model on two faces folders."""
    from .config import AugmentConfig, LossConfig, TrainConfig

    opts = {k: v for k, v in {"resolution": resolution, "ae_dims": ae_dims, "e_dims": e_dims,
                                "d_dims": d_dims}.items() if v is not None}
    cfg = TrainConfig(faces_a=str(faces_a), faces_b=str(faces_b), model_dir=str(model_dir), model=model,
                      model_options=opts, batch_size=batch_size, iterations=iterations,
                      time_limit=parse_duration(time_limit), save_every=save_every, preview_every=preview_every,
                      snapshot_every=snapshot_every, keep_best=keep_best, timelapse=timelapse, lr=lr,
                      loss=LossConfig(ssim=ssim_weight, l1=l1_weight, mse=mse_weight, mask=mask_weight, eyes=eye_weight,
                                      mouth=mouth_weight),
                      augment=AugmentConfig(warp=not no_warp, warp_to_landmarks=warp_to_landmarks,
                                            **({"flip": 0.0} if no_flip else {}),
                                            **({"lightness": 0.0, "ab": 0.0} if no_color_aug else {})),
                      coverage=coverage, uniform_yaw=uniform_yaw,
                      load_weights=str(load_weights) if load_weights else None, load_parts="all" if load_all else "encoder",
                      freeze_encoder=freeze_encoder, device=device, precision=precision, compile=compile,
                      compile_mode=compile_mode, seed=seed, identity_check=identity_check, threads=threads,
                      progress=not no_progress)
    if lr is not None and lr >= 1:
        raise InputError(f"--lr must be between 0 and 1, got {lr}")
    cfg.check()             # before torch loads: a bad setting is one line, at once
    from .loop import train

    _print_summary(train(cfg), snapshot_every, timelapse)


def _print_summary(s: dict, snapshot_every: int, timelapse: bool) -> None:
    import os
    if int(os.environ.get("RANK", "0")) != 0:
        return
    from rich.console import Console
    from rich.table import Table

    t = Table(title="veriswap train", show_header=False)
    t.add_row("model", f"{s['architecture']} {s['resolution']}px -> {s['model_dir']}")
    if s["initialised_from"]:
        src = s["initialised_from"]
        t.add_row("started from", f"{src['parts']} of {src['model_dir']} (iteration {src['iteration']})")
    t.add_row("device", f"{s['device']} ({s['precision']}), {s['world_size']} process(es)")
    t.add_row("iterations", f"{s['iteration']} (this run {s['iterations_run']}"
              + (f", resumed from {s['resumed_from']}" if s["resumed_from"] is not None else "") + ")")
    t.add_row("stopped by", s["stopped_by"] or "-")
    gone = s.get("stale_temps_removed") or {}
    if gone.get("files"):
        t.add_row("cleaned", f"{gone['files']} temp file(s) of an interrupted save ({gone['bytes'] / 1e6:.1f} MB)")
    t.add_row("speed", f"{s['it_per_s']} it/s, {s['examples_per_s']} examples/s, {s['seconds']} s")
    if s["first_loss"] and s["last_loss"]:
        f, l = s["first_loss"], s["last_loss"]
        t.add_row("loss A / B", f"{f['loss_a']:.4f} / {f['loss_b']:.4f} -> {l['loss_a']:.4f} / {l['loss_b']:.4f}")
    ic = s["identity_check"]
    if ic:
        from ..quality import identity_check_line
        t.add_row("swap quality", identity_check_line(ic))
    t.add_row("files", "model.safetensors, optimizer.safetensors, state.json, config.json, preview.png, loss.csv, loss.png"
              + (", snapshots/" if snapshot_every else "") + (", timelapse/" if timelapse else ""))
    Console().print(t)
