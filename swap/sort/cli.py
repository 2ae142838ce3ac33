"""`veriswap sort`: thin CLI over `swap.sort` (no torch import; registered by veriswap.cli)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from ..errors import InputError

SHOW = 5        # faces listed at each end of the ranked table


def sort_command(
    faces_dir: Path = typer.Argument(..., help="Faces folder (aligned crops + faces.json from `veriswap extract`)."),
    by: str = typer.Option("blur", "--by", help="blur | identity | yaw | pitch | hist: the ranking shown and stored."),
    ref_face: Optional[Path] = typer.Option(None, "--ref-face", help="identity: distance to the largest face in this photo (default: the folder's median face)."),
    reject_blur: Optional[float] = typer.Option(None, "--reject-blur", help="Reject faces whose blur score is below this."),
    max_distance: Optional[float] = typer.Option(None, "--max-distance", help="Reject faces whose identity distance is above this (default: off; 0.6 with --by identity --ref-face)."),
    keep: Optional[int] = typer.Option(None, "--keep", help="Keep the best N faces spread over yaw/pitch (sharpest per pose bin); reject the rest."),
    apply: bool = typer.Option(False, "--apply", help="Move rejected faces into FACES_DIR/rejected/ (train no longer sees them)."),
    restore: bool = typer.Option(False, "--restore", help="Move every face in FACES_DIR/rejected/ back."),
    rescore: bool = typer.Option(False, "--rescore", help="Ignore faces.json: score every crop from its pixels (after editing crops)."),
    as_json: bool = typer.Option(False, "--json", help="Print sort.json's document instead of the table."),
    no_progress: bool = typer.Option(False, "--no-progress"),
) -> None:
    """Rank a faces folder's crops and move the bad ones aside (writes FACES_DIR/sort.json)."""
    from .moves import restore_faces
    from .report import SortSettings
    from .run import sort_faces

    if restore:
        if apply:
            raise InputError("--restore and --apply cannot be combined")
        r = restore_faces(faces_dir)
        for name in r.conflicts:
            typer.secho(f"warning: {name} stays in rejected/: {faces_dir / name} exists (made again by extract?)",
                        err=True, fg="yellow")
        if as_json:
            typer.echo(json.dumps({"restored": r.restored, "conflicts": r.conflicts,
                                   "entries_restored": r.entries_restored, "seconds": round(r.seconds, 3)}, indent=1))
        else:
            typer.echo(f"sort --restore: {len(r.restored)} face(s) moved back into {faces_dir}, "
                       f"{r.entries_restored} faces.json entr{'y' if r.entries_restored == 1 else 'ies'} put back, "
                       f"{len(r.conflicts)} left in rejected/, {r.seconds:.1f} s")
        return

    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn

    from ..progress import progress_bar

    settings = SortSettings(by=by, ref_face=None if ref_face is None else str(ref_face), reject_blur=reject_blur,
                            max_distance=max_distance, keep=keep, rescore=rescore)
    with progress_bar(TextColumn("sort: reading crops"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                      disable=no_progress) as bar:
        task = bar.add_task("read", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total or None)

        report = sort_faces(faces_dir, settings, progress, write=not apply)   # apply writes it, once it holds the folder
    for w in report.warnings:
        typer.secho(f"warning: {w}", err=True, fg="yellow")
    if not as_json:
        _print_table(report)        # the ranking as scored, before anything moves
    if apply:
        report.apply()
    if as_json:
        typer.echo(json.dumps(report.to_json(), indent=1))
        return
    c = report.counts()
    rules = ", ".join(f"{k} {v}" for k, v in c["rejected_by"].items() if v) or "none"
    where = f", {c['faces']} in the folder + {c['in_rejected']} already in rejected/" if c["in_rejected"] else ""
    typer.echo(f"sort: {len(report.faces)} faces scored ({c['from_faces_json']} from faces.json, {c['from_pixels']} "
               f"from pixels{where}); rejected {c['rejected']} of {c['faces']} ({rules}), moved {c['moved']}, "
               f"{report.seconds:.1f} s")
    typer.echo(f"sort.json: {Path(faces_dir) / 'sort.json'}")
    if c["rejected"] and not apply:
        typer.echo(f"(add --apply to move the rejected faces into {Path(faces_dir) / 'rejected'}/)")


def _print_table(report) -> None:
    from .scorers import SCORERS

    by = report.settings.by
    typer.echo(f"sort by {by} ({SCORERS[by].describe}), best first:")
    cols = report.scores
    typer.echo(f"{'rank':>5}  " + "".join(f"{n:>9}" for n in cols) + f"  {'file':<34} reject")
    ranked = report.ranked
    rows = list(enumerate(ranked, 1))
    if len(rows) > 2 * SHOW:
        rows = rows[:SHOW] + [None] + rows[-SHOW:]
    for row in rows:
        if row is None:
            typer.echo(f"{'...':>5}")
            continue
        rank, f = row
        vals = "".join(f"{_fmt(f.score(n)):>9}" for n in cols)
        typer.echo(f"{rank:>5}  {vals}  {f.file:<34} {'; '.join(f.reject.values())}".rstrip())


def _fmt(v: Optional[float]) -> str:
    if v is None:
        return "-"
    return f"{v:.3f}" if abs(v) < 10 else f"{v:.1f}"
