"""`veriswap graphic-swap`: thin CLI over `swap.graphic` (no torch), mounted in veriswap/cli.py. Only typer at
module level (swap.graphic loads run.py, numpy and cv2 on first use), so mounting it keeps `veriswap --help`
light. Errors are InputError (exit 2 through veriswap.cli.main, one line)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def graphic_swap_command(
    source: Path = typer.Argument(..., help="Source face: a photo (its largest face), or a faces folder / aligned "
                                  "crop from `veriswap extract`."),
    target: Path = typer.Argument(..., help="Target video whose faces are replaced."),
    out: Path = typer.Option(..., "-o", "--output", help="Output video (.mp4/.mov), C2PA-signed."),
    alignments: Optional[Path] = typer.Option(None, "--alignments", help="The target's alignments file from "
                                              "`veriswap extract` (default: extract now)."),
    source_face: int = typer.Option(0, "--source-face", help="Which face of the source photo, 0 = the largest."),
    all_faces: bool = typer.Option(False, "--all-faces", help="Swap every face of each frame (default: the largest)."),
    color: str = typer.Option("lab", "--color", help="Colour matching: lab | avg | none."),
    blend: str = typer.Option("alpha", "--blend", help="alpha (feathered landmark hull) | seamless (Poisson clone)."),
    erode: float = typer.Option(0.03, "--erode", help="Mask erosion, fraction of face size."),
    blur: float = typer.Option(0.08, "--blur", help="Mask feather, fraction of face size."),
    no_mirror: bool = typer.Option(False, "--no-mirror", help="Never use the source's mirror image (by default it is "
                                   "used where its pose matches the target's better)."),
    labels_dir: Optional[Path] = typer.Option(None, "--labels-dir", help="Labels + masks folder (default: OUT.labels/)."),
    key: Optional[Path] = typer.Option(None, "--key", "-k", help="Signing identity folder (default: the local identity)."),
    crf: int = typer.Option(18, "--crf", help="H.264 quality (lower = better)."),
    no_progress: bool = typer.Option(False, "--no-progress"),
) -> None:
    """Graphics-based face swap (FaceForensics++ "FaceSwap" style): the source face's texture warped onto the
    target's landmarks, colour-matched and blended; a signed video with per-frame labels and masks."""
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn

    from ..progress import progress_bar
    from .run import GraphicSwapSettings, graphic_swap

    settings = GraphicSwapSettings(source=str(source), target=str(target), out=str(out),
                                   alignments=str(alignments) if alignments else None,
                                   labels_dir=str(labels_dir) if labels_dir else None, source_face=source_face,
                                   faces="all" if all_faces else "largest", color=color, blend=blend, erode=erode,
                                   blur=blur, crf=crf, key_dir=str(key) if key else None, mirror=not no_mirror)
    with progress_bar(TextColumn("graphic-swap"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                      disable=no_progress) as bar:
        task = bar.add_task("graphic-swap", total=None)
        s = graphic_swap(settings, progress=lambda done, total: bar.update(task, completed=done, total=total or None))
    for w in s.warnings:
        typer.secho(f"warning: {w}", err=True, fg="yellow")
    typer.echo(f"graphic-swap: {s.source} onto {target.name}: {s.frames} frames, {s.frames_swapped} with swapped "
               f"faces, {s.faces_swapped} faces swapped, {s.faces_skipped} other faces kept, {s.fps:.1f} fps, "
               f"{s.seconds:.1f} s\noutput:   {s.out} (C2PA manifest {s.manifest})\nlabels:   {s.labels}")
