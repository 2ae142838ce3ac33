"""`veriswap extract`: thin CLI over `swap.extract` (no torch import; registered by veriswap.cli)."""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer


def extract_command(
    inputs: List[Path] = typer.Argument(..., help="Videos, images or image folders."),
    out: Path = typer.Option(..., "-o", "--output", help="Faces folder (aligned PNGs + faces.json)."),
    alignments: Optional[Path] = typer.Option(None, "--alignments", help="Alignments file (default: OUT/alignments.json)."),
    detector: str = typer.Option("hog", "--detector", help="hog (fast) | cnn (dlib MMOD, accurate, slow on CPU)."),
    size: int = typer.Option(256, "--size", help="Aligned crop side in pixels."),
    every: int = typer.Option(1, "--every", help="Process every N-th frame."),
    detect_every: int = typer.Option(5, "--detect-every", help="Video: re-detect each tracked face in a small region around it every N processed frames."),
    scan_every: int = typer.Option(25, "--scan-every", help="Video: full-frame scan for new faces every N processed frames (and on scene cuts)."),
    embed_every: int = typer.Option(25, "--embed-every", help="Video: refresh each face track's identity embedding every N frames."),
    upsample: int = typer.Option(1, "--upsample", help="Detector upsampling (1 finds faces down to ~40 px)."),
    min_size: int = typer.Option(32, "--min-size", help="Skip faces smaller than this (px)."),
    smooth: bool = typer.Option(True, "--smooth/--no-smooth", help="Video: smooth landmarks over time."),
    refeed: int = typer.Option(1, "--re-feed", help="Average N landmark fits on slightly shifted/scaled boxes "
                               "(faceswap's re-feed: steadier landmarks, N times the landmark cost)."),
    ref_face: Optional[Path] = typer.Option(None, "--ref-face", help="Keep only faces of the person in this photo."),
    max_distance: float = typer.Option(0.6, "--max-distance", help="With --ref-face: identity distance to keep a face."),
    jobs: Optional[int] = typer.Option(None, "--jobs", "-j", help="Worker processes (default: all CPU cores)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Start over if OUT was made with other settings."),
    no_progress: bool = typer.Option(False, "--no-progress"),
) -> None:
    """Detect, align and crop faces; write a faces folder and an alignments file (resumable)."""
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn

    from ..progress import progress_bar
    from .pipeline import ExtractSettings, extract

    settings = ExtractSettings(detector=detector, upsample=upsample, size=size, every=every,
                               detect_every=detect_every, scan_every=scan_every, embed_every=embed_every, smooth=smooth,
                               min_size=min_size, max_distance=max_distance, refeed=refeed)
    with progress_bar(TextColumn("extract"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[fps]} fps"),
                      TimeRemainingColumn(), disable=no_progress) as bar:
        task = bar.add_task("extract", total=None, fps="-")

        def progress(done: int, total: int) -> None:
            el = bar.tasks[0].elapsed or 0
            bar.update(task, completed=done, total=total or None, fps=f"{done / el:.1f}" if el > 0 else "-")

        summary = extract(inputs, out, alignments, settings, ref_face, jobs, overwrite, progress)
    for w in summary.warnings:       # one line each, never wrapped (users grep these)
        typer.secho(f"warning: {w}", err=True, fg="yellow")
    for e in summary.errors:
        typer.secho(f"error: {e}", err=True, fg="red")
    typer.echo(
        f"extract: {summary.sources} source(s), {summary.frames_read} frames read"
        f" ({summary.frames_resumed} already done), {summary.faces_found} faces found,"
        f" {summary.faces_written} written, {summary.faces_filtered} filtered out by --ref-face,"
        f" {summary.frames_no_face} frames with no face, {summary.fps:.1f} fps, {summary.seconds:.1f} s\n"
        f"faces:      {summary.faces_dir}\nalignments: {summary.alignments}")
    if summary.errors:
        raise typer.Exit(2)
