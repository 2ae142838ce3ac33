"""What the demo's steps share: options, results, the context (paths, console, facts found), the option
checks and the closing summary table."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

from swap.errors import InputError, VeriswapError

PERSON_A, PERSON_B = "astronaut", "grace_hopper"
NAMES = {PERSON_A: "Eileen Collins (astronaut)", PERSON_B: "Grace Hopper"}
STATE_FILE = "demo.json"
SUMMARY_FILE = "summary.json"
MIN_TRAIN_SECONDS = 5.0     # a re-run trains on only if at least this much of the time limit is left
# what the demo writes in DIR; `fresh=True` removes exactly these, nothing else
OWNED = ("videos", "faces", "model", "keys", "outputs", "tamper", "detect", "check.toml", "report", STATE_FILE,
         SUMMARY_FILE)


@dataclass
class DemoOptions:
    out_dir: str = "demo_out"
    time_limit: float = 90.0        # seconds of training in total for the demo model
    frames: int = 50                # frames per sample video (25 fps)
    size: int = 256                 # aligned crop size written by extract
    batch_size: int = 8             # faces per identity per training step
    lr: float = 5e-5
    tamper_frame: Optional[int] = None   # coded frame altered in the tamper copy (default: 60% in)
    jobs: Optional[int] = None      # extract worker processes (default: all cores)
    device: str = "auto"
    detect_frames: int = 16         # frames per video in the detect dataset and when scoring
    detect_epochs: int = 5          # detector training epochs (tiny model, seconds)
    fresh: bool = False             # remove the demo's earlier outputs in out_dir first
    progress: bool = True


class DemoInterrupted(VeriswapError):
    exit_code = 130


@dataclass
class StepResult:
    name: str
    title: str
    seconds: float = 0.0
    resumed: bool = False           # nothing to do: an earlier run had done it
    ok: bool = True                 # the step's checks came out as expected
    demonstration: bool = False     # its findings are measured numbers shown as they are, not a passed check
    lines: List[str] = field(default_factory=list)     # one-line findings for the summary


@dataclass
class DemoResult:
    out_dir: str
    steps: List[StepResult] = field(default_factory=list)
    data: Dict[str, Any] = field(default_factory=dict)  # per-step facts (paths, counts, verdicts)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return all(s.ok for s in self.steps)

    def to_dict(self) -> Dict[str, Any]:
        return {"out_dir": self.out_dir, "ok": self.ok, "seconds": round(self.seconds, 1),
                "steps": [asdict(s) for s in self.steps], "data": self.data}


class Context:
    """What steps share: options, output paths, the console, and the facts earlier steps found."""

    def __init__(self, opts: DemoOptions, console):
        self.opts = opts
        self.dir = Path(opts.out_dir)
        self.console = console
        self.data: Dict[str, Any] = {}

    def path(self, *parts: str) -> Path:
        return self.dir.joinpath(*parts)

    def video(self, person: str) -> Path:
        return self.path("videos", f"{person}.mp4")

    def faces(self, person: str) -> Path:
        return self.path("faces", person)

    @property
    def model_dir(self) -> Path:
        return self.path("model")

    @property
    def key_dir(self) -> Path:
        return self.path("keys")

    def say(self, text: str) -> None:
        self.console.print(f"  {text}", highlight=False)


@dataclass
class Step:
    """One stage of the demo: `run(ctx, result)` fills `result` (and `ctx.data[name]`)."""

    name: str
    title: str
    run: Callable[[Context, StepResult], None]


def validate_options(opts: DemoOptions) -> None:
    """Every option checked before the demo makes or removes anything: a bad one is an InputError up
    front, not a failure at the step that first uses it after minutes of work."""
    if opts.time_limit <= 0:
        raise InputError("the training time limit must be positive")
    if not 10 <= opts.frames <= 2000:
        raise InputError("--frames must be between 10 and 2000")
    if opts.tamper_frame is not None and not 0 <= opts.tamper_frame < opts.frames:
        raise InputError(f"the tampered frame must be in 0..{opts.frames - 1}")
    if opts.batch_size < 1:
        raise InputError(f"--batch-size must be >= 1, got {opts.batch_size}")
    if opts.jobs is not None and opts.jobs < 1:
        raise InputError(f"--jobs must be >= 1, got {opts.jobs}")
    if not 32 <= opts.size <= 1024:
        raise InputError(f"the crop size must be between 32 and 1024, got {opts.size}")
    if not opts.lr > 0:
        raise InputError(f"the learning rate must be positive, got {opts.lr}")
    if opts.detect_frames < 1 or opts.detect_epochs < 1:
        raise InputError("detect_frames and detect_epochs must be >= 1")
    out = Path(opts.out_dir)
    if out.exists() and not out.is_dir():
        raise InputError(f"output is not a folder: {out}")
    from swap.device import resolve_device     # what train, convert and detect use (imports torch)

    try:
        resolve_device(opts.device)
    except RuntimeError as e:      # torch's own complaint about a malformed name, e.g. cuda:x
        raise InputError(f"bad --device {opts.device!r}: {e}") from None



def print_summary(result: DemoResult, console) -> None:
    from rich.table import Table

    demos = [s.name for s in result.steps if s.demonstration]
    head = "all checks passed" if result.ok else "SOME CHECKS FAILED"
    if demos:
        head += f" ({', '.join(demos)}: a demonstration with measured numbers, not a check)"
    t = Table(title=f"veriswap demo: {head} in {result.seconds:.0f} s", show_lines=False, title_justify="left")
    t.add_column("step", style="bold")
    t.add_column("s", justify="right")
    t.add_column("result")
    for s in result.steps:
        mark = ("" if s.ok else "[red]FAILED[/] ") + ("[yellow]demonstration, not a check:[/] " if s.demonstration else "")
        when = "done earlier" if s.resumed else (f"{s.seconds:.1f}" if s.seconds < 10 else f"{s.seconds:.0f}")
        t.add_row(s.name, when, mark + "\n".join(s.lines))
    console.print()
    console.print(t)
    d = result.data
    files = []
    if "train" in d:
        files.append(f"preview    {d['train']['preview']}")
    if "convert" in d:
        files.append(f"swapped    {d['convert']['output']}  (labels: {d['convert']['labels']})")
    if "verify" in d:
        files.append(f"  try      veriswap provenance verify {d['verify']['file']} --trust-anchor {d['verify']['trust_anchor']}")
    if "tags" in d:
        files.append(f"  try      veriswap provenance check {d['tags']['tampered_video']} --tags {d['tags']['tags']}"
                     f" --key {d['keys']['tag_key']}")
    if "keys" in d and "convert" in d:
        out = Path(result.out_dir)
        files.append(f"  try      veriswap check {out / 'outputs'} {out / 'videos'} {out / 'tamper'}"
                     f" --config {d['keys']['check_config']} --html {out / 'report' / 'index.html'}"
                     "   (one verdict per file, HTML report)")
    if "detect" in d:
        files.append(f"  try      veriswap detect score {d['convert']['output']} -d {d['detect']['detector']}"
                     f" --report {Path(result.out_dir) / 'detect' / 'report'}   (timeline + Grad-CAM heatmaps)")
    files.append(f"summary    {Path(result.out_dir) / SUMMARY_FILE}  (re-run to resume; --time-limit to train longer)")
    for line in files:
        console.print(line, highlight=False, soft_wrap=True)
