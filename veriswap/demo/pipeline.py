"""The demo's steps in order and `run_demo` (see veriswap/demo/__init__.py for what each step does)."""
from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import List, Optional

from .core import OWNED, SUMMARY_FILE, Context, DemoOptions, DemoResult, Step, StepResult, print_summary, validate_options
from .step_convert import _step_convert
from .step_detect import _step_detect
from .step_extract import _step_extract
from .step_provenance import _step_keys, _step_tags, _step_verify
from .step_train import _step_train
from .step_videos import _step_videos
from .step_watermark import _step_watermark

STEPS: List[Step] = [
    Step("videos", "Sample videos from the built-in real photos", _step_videos),
    Step("extract", "Extract faces (dlib HOG, 68 landmarks, alignment, embeddings)", _step_extract),
    Step("train", "Train the 'original' swap model (time-limited)", _step_train),
    Step("keys", "Create a provenance identity", _step_keys),
    Step("convert", "Convert A's clip A->B: swapped video + labels + masks, C2PA-signed", _step_convert),
    Step("verify", "Verify the signed output against the trust anchor", _step_verify),
    Step("watermark", "Strip the swap's metadata and re-encode it (CRF 28): watermark -> manifest recovered", _step_watermark),
    Step("tags", "Footage tags: tag a source video, check it and a tampered copy", _step_tags),
    Step("detect", "Detect: dataset from these clips, a tiny detector, score the swap and its source", _step_detect),
]

def run_demo(opts: Optional[DemoOptions] = None, console=None, steps: Optional[List[Step]] = None) -> DemoResult:
    """Run the demo into `opts.out_dir`; returns what each step found (also written to DIR/summary.json)."""
    opts = opts or DemoOptions()
    validate_options(opts)
    out = Path(opts.out_dir)
    if opts.fresh:
        for name in OWNED:
            p = out / name
            if p.is_dir():
                shutil.rmtree(p)
            elif p.exists():
                p.unlink()
    out.mkdir(parents=True, exist_ok=True)
    if console is None:
        from rich.console import Console
        console = Console(highlight=False)
    ctx = Context(opts, console)
    result = DemoResult(str(out), data=ctx.data)
    steps = list(STEPS if steps is None else steps)
    t0 = time.perf_counter()
    console.rule(f"[bold]veriswap demo[/] -> {out}")
    for i, step in enumerate(steps, 1):
        console.print(f"\n[bold cyan][{i}/{len(steps)}] {step.title}[/]")
        res = StepResult(step.name, step.title)
        ts = time.perf_counter()
        step.run(ctx, res)
        res.seconds = time.perf_counter() - ts
        result.steps.append(res)
    result.seconds = time.perf_counter() - t0
    from provenance.fsutil import atomic_write_bytes

    atomic_write_bytes(out / SUMMARY_FILE, json.dumps(result.to_dict(), indent=2, default=str).encode())
    print_summary(result, console)
    return result
