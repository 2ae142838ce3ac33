"""`veriswap detect ...`: thin typer layer over detect.dataset / train / evaluate / score.

torch and timm are imported inside the commands only, so `veriswap --help` stays fast.
Exit codes: 0 success (score: every video judged real), 1 score: at least one video judged fake,
2 bad input or usage (one-line error).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer
from typer.core import TyperCommand

app = typer.Typer(name="detect", help="Deepfake detection: build a face dataset, train a timm detector, evaluate, score videos.",
                  no_args_is_help=True, add_completion=False)


def _progress(label: str, disable: bool):
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn

    from swap.progress import progress_bar

    # on stderr, and only on a terminal (elsewhere rich would leave an empty line before the output)
    return progress_bar(TextColumn(label), BarColumn(), MofNCompleteColumn(), TextColumn("{task.description}"),
                        TimeRemainingColumn(), disable=disable)


class _ManyValues(TyperCommand):
    """`--real a.mp4 b.mp4 --fake c.mp4` as well as `--real a.mp4 --real b.mp4`: the values after one of the
    GREEDY flags, up to the next option, each become that flag's value (click options take one value per
    flag occurrence)."""

    GREEDY = ("--real", "--fake", "--hold-out-identity")

    def parse_args(self, ctx, args):
        out: List[str] = []
        flag, need = None, False
        for i, a in enumerate(args):
            if a == "--":
                out += args[i:]
                break
            if a in self.GREEDY:
                flag, need = a, True
                out.append(a)
            elif a.startswith("-") and len(a) > 1:
                flag, need = None, False
                out.append(a)
            elif flag is not None and not need:
                out += [flag, a]
            else:
                need = False
                out.append(a)
        return super().parse_args(ctx, out)


def _warn(warnings: List[str]) -> None:
    for w in warnings:
        typer.secho(f"warning: {w}", err=True, fg="yellow")


def _fmt(v) -> str:
    return "   n/a" if v is None else f"{v:6.4f}"


@app.command("dataset", cls=_ManyValues)
def dataset_command(
    real: List[Path] = typer.Option([], "--real", help="Real videos or folders of them (--real A B ... or repeated)."),
    fake: List[Path] = typer.Option([], "--fake", help="Fake videos: `veriswap convert` / graphic outputs (their "
                                    "OUT.labels/ is used) or any other tool's videos (--fake A B ... or repeated)."),
    out: Path = typer.Option(..., "-o", "--output", help="Dataset folder (crops/ + dataset.json)."),
    frames: int = typer.Option(32, "--frames", help="Evenly spaced frames per video (0 = all)."),
    size: int = typer.Option(256, "--size", help="Crop side in px."),
    scale: float = typer.Option(1.3, "--scale", help="Crop side as a multiple of the face box."),
    split: str = typer.Option("0.7,0.15,0.15", "--split", help="train,val,test fractions (by video group)."),
    seed: int = typer.Option(0, "--seed", help="Changes the deterministic split."),
    crf: Optional[int] = typer.Option(None, "--crf", help="Re-encode every video with H.264 at this CRF first "
                                      "(FaceForensics++'s c23 = 23, c40 = 40): detection under compression."),
    hold_out: List[str] = typer.Option([], "--hold-out-identity", help="A person (photo file, or a built-in / "
                                       "wheel identity name) whose videos, and everything grouped with them, all go "
                                       "to test (repeatable; several names after one flag work too)."),
    test_only: bool = typer.Option(False, "--test-only", help="Every video in test: an eval-only dataset (e.g. "
                                   "other tools' swaps) for `detect eval`."),
    split_by: str = typer.Option("content", "--split-by", help="content: the same footage (copies, swaps and "
                                 "their sources) stays on one side; identity: each person does too."),
    sources: Optional[Path] = typer.Option(None, "--sources", help="CSV fake,source[,identity] for fakes that "
                                           "record no source (another tool's swaps); identity = the person swapped "
                                           "in (photo or name): only the face tracks matching it are kept."),
    face_check: bool = typer.Option(True, "--face-check/--no-face-check", help="Drop detected tracks where dlib's "
                                    "CNN finds no face (a logo, a patch), and say so."),
    no_progress: bool = typer.Option(False, "--no-progress"),
) -> None:
    """Face crops of real videos and swaps + dataset.json (split by group of videos, never by frame)."""
    from swap.video import existing_paths

    from .dataset import DatasetSettings, build_dataset

    existing_paths(list(real) + list(fake) + ([sources] if sources else []))
    s = DatasetSettings(frames=frames, size=size, scale=scale, split=DatasetSettings.parse_split(split), seed=seed,
                        crf=crf, hold_out=tuple(hold_out), test_only=test_only, split_by=split_by,
                        sources=str(sources) if sources else None, verify_faces=face_check)
    s.check()
    with _progress("dataset", no_progress) as bar:
        task = bar.add_task("", total=None)
        summ = build_dataset(real, fake, out, s, progress=lambda d, t, name: bar.update(task, completed=d, total=t, description=name))
    for n in summ.notes:
        typer.echo(n)
    _warn(summ.warnings)
    typer.echo(f"dataset: {summ.videos} videos ({summ.videos_resumed} resumed), {summ.samples} face crops, {summ.seconds:.1f} s")
    for sp, c in summ.counts.items():
        typer.echo(f"  {sp:5s}  {c['videos']:4d} videos  {c['real']:6d} real  {c['fake']:6d} fake")
    typer.echo(f"index:   {Path(out) / 'dataset.json'}")


@app.command("train")
def train_command(
    dataset_dir: Path = typer.Argument(..., help="Dataset folder from `veriswap detect dataset`."),
    out: Path = typer.Option(..., "-o", "--output", help="Detector folder (model.safetensors, config.json, metrics.json)."),
    arch: str = typer.Option("efficientnet_b0", "--arch", help="timm architecture."),
    epochs: int = typer.Option(10, "--epochs", help="Total epochs (a re-run resumes up to this)."),
    batch_size: int = typer.Option(32, "--batch-size", "-b"),
    lr: float = typer.Option(3e-4, "--lr"),
    input_size: Optional[int] = typer.Option(None, "--input-size", help="Model input px (default: the architecture's)."),
    sbi: bool = typer.Option(False, "--sbi", help="Add self-blended images of the real faces as extra fakes."),
    pretrained: bool = typer.Option(True, "--pretrained/--no-pretrained", help="Start from timm's pretrained weights "
                                    "(Hugging Face hub, cached; works offline from the cache) or train from scratch."),
    weights: Optional[Path] = typer.Option(None, "--weights", help="Local backbone weights to start from (.safetensors "
                                           "preferred, or .pth), loaded by timm (pretrained_cfg_overlay)."),
    leave_out_method: List[str] = typer.Option([], "--leave-out-method", help="Keep this method's fakes (a method "
                                               "name or family: autoencoder, graphic) out of training (repeatable)."),
    augment: float = typer.Option(1.0, "--augment", help="Augmentation strength (0 = off)."),
    steps_per_epoch: Optional[int] = typer.Option(None, "--steps-per-epoch", help="Steps per epoch (default one "
                                                  "pass; more than a pass draws crops with replacement)."),
    balance: bool = typer.Option(False, "--balance", help="Draw real and fake crops equally (with --sbi and swaps: "
                                 "a quarter each of SBI and swapped fakes)."),
    workers: int = typer.Option(0, "--workers", help="DataLoader worker processes."),
    seed: int = typer.Option(0, "--seed"),
    device: str = typer.Option("auto", "--device", help="auto | cpu | cuda."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Start again instead of resuming."),
    time_limit: Optional[str] = typer.Option(None, "--time-limit", help="Start no epoch that would end after this "
                                             "long, e.g. 90s, 10m, 1h30m (a re-run goes on)."),
    patience: int = typer.Option(3, "--patience", help="Stop when val has not improved for this many epochs (0: never)."),
    val_sbi: bool = typer.Option(True, "--val-sbi/--no-val-sbi", help="With --sbi: self-blended fakes of the val "
                                 "split's real faces in val too (so the best epoch and threshold see them)."),
    no_progress: bool = typer.Option(False, "--no-progress"),
) -> None:
    """Train a timm classifier (BCE, AdamW, DFDC augmentations, optional SBI); keep the best epoch. One line per
    epoch as it ends; Ctrl-C / SIGTERM stop cleanly (last finished epoch kept, re-run to resume)."""
    from swap.progress import parse_duration
    from swap.video import existing_paths

    existing_paths([dataset_dir] + ([weights] if weights else []))
    from .train import TrainSettings, train_detector

    s = TrainSettings(arch=arch, epochs=epochs, batch_size=batch_size, lr=lr, input_size=input_size, sbi=sbi,
                      weights=str(weights) if weights else None, pretrained=pretrained or weights is not None,
                      leave_out_methods=list(leave_out_method), augment=augment, workers=workers, seed=seed,
                      steps_per_epoch=steps_per_epoch, balance=balance, device=device, overwrite=overwrite,
                      time_limit=parse_duration(time_limit), patience=patience, val_sbi=val_sbi)
    s.check()

    def epoch_line(h: dict) -> str:
        tl = h["train_loss"] if h["train_loss"] is not None else float("nan")
        return (f"  epoch {h['epoch'] + 1:3d}  train loss {tl:.4f}  val loss {h['val_loss']:.4f}  "
                f"val AUC {_fmt(h['val_auc'])}  {h.get('seconds', 0):.0f} s{'  (best)' if h.get('best') else ''}")

    with _progress("train", no_progress) as bar:
        task = bar.add_task("", total=None)

        def prog(epoch, step, steps, loss):
            bar.update(task, completed=step, total=steps, description=f"epoch {epoch + 1}/{epochs} loss {loss:.4f}")

        def on_epoch(h):                # each epoch as it ends, so a piped log shows progress
            bar.console.print(epoch_line(h), highlight=False) if bar.live.is_started else typer.echo(epoch_line(h))
        summ = train_detector(dataset_dir, out, s, progress=prog, on_epoch=on_epoch)
    _warn(summ.warnings)
    typer.echo(f"train: {summ.epochs_run} epochs run ({summ.epochs_resumed} resumed), {summ.train_samples} train / "
               f"{summ.val_samples} val samples ({summ.val_sbi_samples} of them self-blended), {summ.seconds:.1f} s")
    if summ.stopped:
        typer.echo(f"stopped: {summ.stopped}")
    typer.echo(f"best epoch {summ.best_epoch + 1}, val AUC {_fmt(summ.best_val_auc)}, threshold {summ.threshold:.4f}\n"
               f"detector: {out}")
    if summ.stopped and summ.stopped.startswith("stopped by"):
        raise typer.Exit(1)


@app.command("eval")
def eval_command(
    dataset_dirs: List[Path] = typer.Argument(..., help="Dataset folder(s): several give each one's metrics and "
                                              "all of them pooled (e.g. a --test-only set of other tools' swaps)."),
    detector_dir: Path = typer.Option(..., "-d", "--detector", help="Detector folder from `veriswap detect train`."),
    split: str = typer.Option("test", "--split", help="train | val | test (several datasets: also all)."),
    batch_size: int = typer.Option(32, "--batch-size", "-b"),
    device: str = typer.Option("auto", "--device", help="auto | cpu | cuda (as train)."),
    leave_out_method: List[str] = typer.Option([], "--leave-out-method", help="A method (or family) the detector "
                                               "was trained without: checked, and reported as cross-method."),
    card: bool = typer.Option(True, "--card/--no-card", help="Write the model card (model_card.json, MODEL_CARD.md) "
                              "into the detector folder: held-out results per method, identity and re-encoding."),
    conditions: str = typer.Option("original,crf23,crf40,0.5x,crf40+0.5x", "--conditions",
                                   help="Model card conditions (re-encodes of the held-out videos)."),
    train_dataset: Optional[Path] = typer.Option(None, "--train-dataset", help="The dataset the detector was "
                                                 "trained on (default: the one its config names)."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Frame AUC, video AUC, EER, AP, ACC@0.5 and @threshold on a split; writes the model card."""
    from swap.video import existing_paths

    from .evaluate import evaluate
    from .model import Detector

    if len(dataset_dirs) > 1:
        _eval_many(dataset_dirs, detector_dir, split, batch_size, device, as_json)
        return
    dataset_dir = dataset_dirs[0]
    existing_paths([dataset_dir, detector_dir] + ([train_dataset] if train_dataset else []))
    det = Detector(detector_dir, device=device)
    rep = evaluate(dataset_dir, detector_dir, split, batch_size, detector=det, leave_out=leave_out_method)
    mc = None
    if card:
        from .card import build_card

        mc = build_card(dataset_dir, detector_dir, detector=det, split=split, train_dataset=train_dataset,
                        conditions=[c.strip() for c in conditions.split(",") if c.strip()], batch_size=batch_size)
        mc.save(detector_dir)
    if as_json:
        d = rep.to_dict()
        d["model_card"] = None if mc is None else str(Path(detector_dir) / "model_card.json")
        typer.echo(json.dumps(d, indent=2))
        return
    _warn(rep.warnings)
    typer.echo(f"eval on {split}: {rep.frame['n']} faces ({rep.frame['n_fake']} fake), {rep.videos} videos, "
               f"threshold {rep.threshold:.4f}, {rep.seconds:.1f} s")
    typer.echo("           AUC     EER      AP     ACC@0.5  ACC@thr")
    for name, m in (("frame", rep.frame), ("video", rep.video)):
        typer.echo(f"  {name:6s} {_fmt(m['auc'])}  {_fmt(m['eer'])}  {_fmt(m['ap'])}  {_fmt(m['acc_05'])}  {_fmt(m['acc_threshold'])}")
    if rep.per_method:
        typer.echo("per method (its fakes vs all reals):   frame AUC  video AUC  fake videos")
        for name, m in rep.per_method.items():
            typer.echo(f"  {name:<36s} {_fmt(m['frame_auc'])}     {_fmt(m['video_auc'])}      {m['fake_videos']}")
    if mc is not None:
        _warn(mc.warnings)
        typer.echo("\n".join(mc.key_lines()))
        typer.echo(f"model card: {Path(detector_dir) / 'MODEL_CARD.md'}")


def _eval_many(datasets: List[Path], detector_dir: Path, split: str, batch_size: int, device: str,
               as_json: bool) -> None:
    """`eval DS1 DS2 ...`: each dataset's metrics and the pooled ones (detect.pooled); no model card (it is
    built from one held-out dataset: run `eval DS -d DET` on it)."""
    from swap.video import existing_paths

    from .model import Detector
    from .pooled import evaluate_many

    existing_paths(list(datasets) + [detector_dir])
    rep = evaluate_many(datasets, detector_dir, split, batch_size, detector=Detector(detector_dir, device=device))
    if as_json:
        typer.echo(json.dumps(rep.to_dict(), indent=2))
        return
    _warn(rep.warnings)
    typer.echo(f"eval on {split} of {len(datasets)} datasets: {rep.frame['n']} faces ({rep.frame['n_fake']} fake), "
               f"{rep.videos} videos, threshold {rep.threshold:.4f}, {rep.seconds:.1f} s")
    typer.echo("                       frame AUC  video AUC  EER (frame)  ACC@thr (video)  videos")
    rows = [(Path(k).name, v) for k, v in rep.datasets.items()] + [("pooled", {"frame": rep.frame, "video": rep.video,
                                                                               "videos": rep.videos})]
    for name, m in rows:
        typer.echo(f"  {name[:20]:<20s} {_fmt(m['frame']['auc'])}     {_fmt(m['video']['auc'])}     "
                   f"{_fmt(m['frame']['eer'])}       {_fmt(m['video']['acc_threshold'])}        {m['videos']}")
    if rep.per_method:
        typer.echo("per method, pooled (its fakes vs all reals):   frame AUC  video AUC  fake videos")
        for name, m in rep.per_method.items():
            typer.echo(f"  {name:<44s} {_fmt(m['frame_auc'])}     {_fmt(m['video_auc'])}      {m['fake_videos']}")
    typer.echo("model card: not written for several datasets (run `detect eval HELD_OUT_DS -d DET` for it)")


@app.command("score")
def score_command(
    videos: List[Path] = typer.Argument(..., help="Videos (or folders of videos) to judge."),
    detector_dir: Path = typer.Option(..., "-d", "--detector", help="Detector folder."),
    frames: int = typer.Option(32, "--frames", help="Evenly spaced frames to score (0 = every frame)."),
    rule: str = typer.Option("confident", "--rule", help="Aggregation: confident (DFDC) | mean | median | max."),
    batch_size: int = typer.Option(32, "--batch-size", "-b", help="Faces per model forward pass."),
    report: Optional[Path] = typer.Option(None, "--report", help="Folder for per-video timeline PNG/CSV + JSON."),
    heatmaps: int = typer.Option(3, "--heatmaps", help="With --report: Grad-CAM heatmaps of each face track's "
                                 "N most suspicious frames (0: none)."),
    labels: bool = typer.Option(True, "--labels/--no-labels", help="Compare the timeline with the labels "
                                "`convert` wrote beside a video (OUT.labels/): frame AUC, IoU of flagged frames."),
    device: str = typer.Option("auto", "--device", help="auto | cpu | cuda (as train and convert)."),
    as_json: bool = typer.Option(False, "--json", help="Print results as JSON."),
    no_progress: bool = typer.Option(False, "--no-progress"),
) -> None:
    """Judge videos: per-frame timeline, per-face-track scores, verdict. FAKE / REAL only where the detector's
    model card validates it (else UNCERTAIN with the reason). A video with no findable face gets a NOT JUDGED
    row and the batch goes on. Exit 1 = any FAKE, else 2 if any video could not be judged, else 0."""
    from swap.video import existing_paths, expand_inputs, probe

    from .score import check_options

    existing_paths(list(videos) + [detector_dir])
    videos = expand_inputs(videos)          # a folder of videos: each of them (a folder of images: one clip)
    check_options(frames, rule, batch_size, heatmaps)
    for v in videos:
        probe(v)                                # every input is a readable video before work starts
    from .model import Detector
    from .score import score_many

    from .card import ModelCard
    from .verdict import decide

    det = Detector(detector_dir, device=device)
    mc = ModelCard.load(detector_dir)
    with _progress("score", no_progress) as bar:
        def start(v: Path):
            task = bar.add_task(v.name, total=None)
            return lambda d, t: bar.update(task, completed=d, total=t)
        results = score_many(videos, det, frames, rule, batch_size, on_start=start,
                             heatmaps=heatmaps if report is not None else 0, truth=labels)
    judged = [decide(r.score, r.threshold, mc, _input_family(r.path) if labels else None) if r.judged else None
              for r in results]
    if report is not None:
        from .report import write_report

        write_report(results, report)
    if as_json:
        typer.echo(json.dumps([{**r.to_dict(), "judgement": None if j is None else j.to_dict()}
                               for r, j in zip(results, judged)], indent=2))
    else:
        for r, j in zip(results, judged):
            if j is None:
                typer.echo(f"{'NOT JUDGED':9s}  {r.path}\n      {r.reason}")
                continue
            _warn(r.warnings)
            tr = ", ".join(f"track {t.track}: {t.score:.3f} ({t.frames} frames)" for t in r.tracks)
            typer.echo(f"{j.label:9s}  score {r.score:.3f}  (threshold {r.threshold:.3f}, rule {r.rule}, "
                       f"{r.frames_sampled} frames, {r.seconds:.1f} s)  {r.path}\n      {tr}")
            typer.echo(f"      {'why: ' + '; '.join(j.reasons) if j.reasons else 'validated: ' + '; '.join(j.basis)}")
            g = r.ground_truth
            if g is not None:
                f = lambda v: "-" if v is None else f"{v:.3f}"  # noqa: E731
                typer.echo(f"      vs labels: swapped {g.swapped_frames or 'none'}; {g.swapped} of {g.frames} scored "
                           f"frames swapped, {g.flagged} flagged; frame AUC {f(g.frame_auc)}, precision "
                           f"{f(g.precision)}, recall {f(g.recall)}, IoU {f(g.iou)}")
        if report is not None:
            typer.echo(f"report: {report}")
        typer.echo("\n".join(mc.key_lines()) if mc is not None else
                   "model card: none (run `veriswap detect eval` to measure this detector on held-out data)")
    missed = [r for r in results if not r.judged]
    if len(results) > 1 or missed:
        counts = {k: sum(1 for j in judged if j is not None and j.label == k) for k in ("FAKE", "REAL", "UNCERTAIN")}
        line = (f"{len(results)} videos: {counts['FAKE']} FAKE, {counts['REAL']} REAL, {counts['UNCERTAIN']} "
                f"UNCERTAIN, {len(missed)} not judged")
        typer.echo(line, err=as_json)
    if any(j is not None and j.label == "FAKE" for j in judged):
        raise typer.Exit(1)
    if missed:
        raise typer.Exit(2)


def _input_family(path: Path) -> Optional[str]:
    """The manipulation family a video's own labels name (a veriswap output), else None (unknown)."""
    from swap.labels import find_labels, read_labels

    from .card import method_family
    from .dataset import manipulation

    try:
        lp = find_labels(Path(path))
        return method_family(manipulation(read_labels(lp))) if lp is not None else None
    except Exception:  # noqa: BLE001 - damaged labels: the method is unknown, the verdict does not depend on them
        return None
