"""`veriswap demo`: thin CLI over `veriswap.demo.run_demo` (torch is imported inside the steps only)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def demo_command(
    out: Path = typer.Option(Path("demo_out"), "-o", "--output", help="Folder for everything the demo makes "
                             "(re-running on it resumes)."),
    time_limit: str = typer.Option("90s", "--time-limit", help="Total training time of the demo model, "
                                   "e.g. 90s, 10m (a re-run trains only what is missing)."),
    frames: int = typer.Option(50, "--frames", help="Frames per sample video (25 fps)."),
    batch_size: int = typer.Option(8, "--batch-size", "-b", help="Faces per person per training step."),
    jobs: Optional[int] = typer.Option(None, "--jobs", "-j", help="Extract worker processes (default: all cores)."),
    device: str = typer.Option("auto", "--device", help="Training device: auto | cpu | cuda."),
    fresh: bool = typer.Option(False, "--fresh", help="Delete the demo's earlier outputs in OUT first."),
    no_progress: bool = typer.Option(False, "--no-progress", help="No progress bars."),
) -> None:
    """Run every built stage end to end on the built-in real faces (about 3 minutes on 2 CPU cores).

    Sample videos -> extract (+ sort by identity) -> train -> keys -> render the swaps -> C2PA sign + verify
    -> footage tags and a tamper check -> detect (a tiny detector trained in seconds on the demo's clips
    scores the swap, its source and a partial swap against its labels: a pipeline demonstration, not a
    trustworthy detector). Re-running on the same folder resumes.
    """
    from swap.progress import parse_duration

    from .pipeline import DemoOptions, run_demo

    seconds = parse_duration(time_limit)
    result = run_demo(DemoOptions(out_dir=str(out), time_limit=seconds, frames=frames, batch_size=batch_size,
                                  jobs=jobs, device=device, fresh=fresh, progress=not no_progress))
    if not result.ok:
        raise typer.Exit(1)
