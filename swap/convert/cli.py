"""`veriswap convert`: thin CLI over `swap.convert` (torch is imported inside the command only; registered by
veriswap.cli)."""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer


def convert_command(
    videos: List[Path] = typer.Argument(..., help="Input video(s), or folders of videos (then -o is a folder)."),
    model_dir: Path = typer.Option(..., "-m", "--model-dir", help="Trained model folder (from `veriswap train`)."),
    out: Path = typer.Option(..., "-o", "--output", help="Output video (.mp4/.mov), C2PA-signed; for several "
                             "inputs a folder (each video -> OUT/{stem}_{direction}.mp4)."),
    direction: str = typer.Option("a2b", "--direction", help="a2b: faces of A become B; b2a: the reverse."),
    alignments: Optional[Path] = typer.Option(None, "--alignments", help="Alignments file from `veriswap extract` (default: extract now)."),
    color: str = typer.Option("avg", "--color", help="Colour matching: avg | lab | hist | seamless (Poisson) | none."),
    mask: str = typer.Option("hull", "--mask", help="hull (landmarks) | learned (hq models' mask head)."),
    erode: float = typer.Option(0.03, "--erode", help="Mask erosion, fraction of face size."),
    blur: float = typer.Option(0.06, "--blur", help="Mask feather, fraction of face size."),
    sharpen: float = typer.Option(0.0, "--sharpen", help="Unsharp-mask amount on the swapped face, 0-5 (0: off; "
                                  "1 lifts the detail the decoder smoothed)."),
    max_distance: float = typer.Option(0.6, "--max-distance", help="Swap only faces this close to the source identity."),
    all_faces: bool = typer.Option(False, "--all-faces", help="Swap every face, whoever it is."),
    frames: Optional[str] = typer.Option(None, "--frames", help="Swap only in these frame ranges, e.g. 0-99,250- "
                                         "(partial fakes; the labels say which frames). Default: every frame."),
    faces_dir: Optional[Path] = typer.Option(None, "--faces-dir", help="Swap only faces whose aligned crop is still "
                                             "in this faces folder (delete bad crops, or `veriswap sort --apply`)."),
    labels_dir: Optional[Path] = typer.Option(None, "--labels-dir", help="Labels + masks folder (default: OUT.labels/ beside OUT)."),
    key: Optional[Path] = typer.Option(None, "--key", "-k", help="Signing identity folder (default: the local identity)."),
    no_watermark: bool = typer.Option(False, "--no-watermark", help="No invisible watermark (the soft binding that "
                                      "leads a stripped copy back to its manifest); the manifest records 'off'."),
    crf: int = typer.Option(18, "--crf", help="H.264 quality (lower = better, 18 ~ visually lossless)."),
    device: str = typer.Option("auto", "--device", help="auto | cpu | cuda."),
    batch_size: int = typer.Option(8, "--batch-size", "-b", help="Faces per model forward pass."),
    no_progress: bool = typer.Option(False, "--no-progress"),
) -> None:
    """Swap faces in a video; write a signed video, per-frame labels and manipulation masks."""
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn

    from ..progress import progress_bar
    from ..video import existing_paths
    from .batch import check_batch
    from .pipeline import ConvertSettings

    existing_paths(list(videos) + [model_dir] + ([alignments] if alignments else []))
    batch = check_batch(videos, out, labels_dir)
    settings = ConvertSettings(direction=direction, color=color, mask=mask, erode=erode, blur=blur, sharpen=sharpen,
                               max_distance=None if all_faces else max_distance, crf=crf, device=device, batch_size=batch_size,
                               key_dir=str(key) if key else None, frames=frames,
                               faces_dir=str(faces_dir) if faces_dir else None, watermark=not no_watermark)
    with progress_bar(TextColumn("convert {task.fields[name]}"), BarColumn(), MofNCompleteColumn(),
                      TimeRemainingColumn(), disable=no_progress) as bar:
        task = bar.add_task("convert", total=None, name="")

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total or None)

        try:
            if batch:
                from .batch import convert_many
                items = convert_many(videos, model_dir, out, alignments, settings, progress,
                                     on_start=lambda i, n, v: bar.update(task, completed=0, total=None,
                                                                         name=f"{i + 1}/{n} {v.name}"))
            else:
                from .pipeline import convert
                s = convert(videos[0], model_dir, out, alignments, settings, labels_dir, progress=progress)
        except KeyboardInterrupt:
            from .parts import parts_folder
            where = f"{out}/.*.mp4.parts/" if batch else str(parts_folder(out))
            typer.echo(f"interrupted: finished segments are kept in {where}; run the same command again to resume",
                       err=True)
            raise typer.Exit(130) from None
    if not batch:
        _report(s, frames, faces_dir)
        return
    for it in items:
        if it.status == "failed":
            typer.secho(f"error: {Path(it.video).name}: {it.error}", err=True, fg="red")
        elif it.status == "skipped":
            typer.echo(f"{Path(it.video).name}: already converted with this model and settings -> {it.out}")
        else:
            typer.echo(f"{Path(it.video).name}: ", nl=False)
            _report(it.summary, frames, faces_dir)
    n = {k: sum(it.status == k for it in items) for k in ("converted", "skipped", "failed")}
    typer.echo(f"convert: {len(items)} videos: {n['converted']} converted, {n['skipped']} already done, "
               f"{n['failed']} failed -> {out}")
    if n["failed"]:
        raise typer.Exit(2)


def _report(s, frames: Optional[str], faces_dir: Optional[Path]) -> None:
    for w in s.warnings:
        typer.secho(f"warning: {w}", err=True, fg="yellow")
    typer.echo(f"convert: {s.frames} frames" + (f" ({s.frames_resumed} resumed)" if s.frames_resumed else "")
               + f", {s.frames_swapped} with swapped faces, {s.faces_swapped} faces swapped,"
               f" {s.faces_skipped} other faces kept"
               + (f", {s.faces_outside} outside --frames kept" if frames else "")
               + (f", {s.faces_removed} not in --faces-dir kept" if faces_dir else "")
               + f", {s.fps:.1f} fps, {s.seconds:.1f} s\n"
               f"output:   {s.out} (C2PA manifest {s.manifest})\nlabels:   {s.labels}")
