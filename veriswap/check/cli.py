"""`veriswap check FILE|FOLDER...`: one verdict per file from every piece of evidence that applies.

The command function is mounted on the root app by veriswap/cli.py (`app.command("check")(check)`).
Exit codes: 0 every file trusted as declared; 1 some file not trusted, tampered or likely manipulated
(a file inside a folder that cannot be read counts here too); 2 bad input or usage (a missing path,
a named file that cannot be read, a bad option).
"""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import List, Optional

import typer

from .options import CheckInputError


def _print_file(rec, echo) -> None:
    v = rec["verdict"]
    color = "green" if v["trusted"] else ("red" if v["word"] in ("tampered", "signature not valid")
                                          or v["word"].startswith("AI swap (watermark)")
                                          or "likely manipulated" in v["headline"] else "yellow")
    echo(typer.style(f"{v['word'].upper():<28}", fg=color, bold=True) + f" {rec['path']}")
    echo(f"  {v['headline']}")
    for r in v["reasons"]:
        echo(f"    {r}")
    for c in v["conflicts"]:
        echo(typer.style(f"  CONFLICT: {c}", fg="yellow"))


def _start_method(opts) -> Optional[str]:
    """This process has read no media when the batch starts (c2pa's native threads start only then), so
    forking it is safe and the cheapest start for C2PA-only workers; else the library picks."""
    import multiprocessing as mp

    return "fork" if not opts.detector and "fork" in mp.get_all_start_methods() else None


def check(
    inputs: List[Path] = typer.Argument(..., help="Files or folders (searched recursively) to check."),
    trust_anchor: Optional[List[Path]] = typer.Option(None, "--trust-anchor", help="PEM root certificate you trust (repeatable)."),
    trust_list: Optional[List[Path]] = typer.Option(None, "--trust-list", help="PEM bundle of trust anchors, e.g. a C2PA trust list (repeatable)."),
    revoked: Optional[List[Path]] = typer.Option(None, "--revoked", help="CRL or certificate file of revoked signers (repeatable)."),
    config: Optional[Path] = typer.Option(None, "--config", help="TOML settings (default $VERISWAP_HOME/check.toml): trust_anchors, trust_lists, revoked, tag_key, detector, allow_remote, store."),
    tags: Optional[Path] = typer.Option(None, "--tags", help="Tag file of the (one) video checked; default: each video's VIDEO.tags sidecar."),
    tag_key: Optional[Path] = typer.Option(None, "--tag-key", help="Key that checks footage tags (HMAC secret, Ed25519 public key or certificate)."),
    detector: Optional[Path] = typer.Option(None, "--detector", "-d", help="Detector folder (default: detector in the config)."),
    no_detector: bool = typer.Option(False, "--no-detector", help="Do not run the detector, even if the config names one."),
    frames: int = typer.Option(32, "--frames", help="Frames the detector samples per video."),
    device: str = typer.Option("cpu", "--device", help="Detector device: cpu, cuda or auto."),
    store: Optional[Path] = typer.Option(None, "--store", help="Manifest store a watermark is looked up in (default: store in the config, else $VERISWAP_HOME/manifests)."),
    allow_remote: bool = typer.Option(False, "--allow-remote", help="Allow fetching a remote manifest a file points to (off: nothing is ever fetched)."),
    as_json: bool = typer.Option(False, "--json", help="Print the JSON report (schema in docs/check.md) instead of text."),
    html_out: Optional[Path] = typer.Option(None, "--html", help="Write a self-contained HTML report (an index page when several files)."),
    jobs: int = typer.Option(0, "--jobs", "-j", help="Processes for batches (0 = all cores)."),
    results: Optional[Path] = typer.Option(None, "--results", help="Resumable results file (default for several files: under $VERISWAP_HOME/check/)."),
    fresh: bool = typer.Option(False, "--fresh", help="Ignore earlier results and check every file again."),
    no_progress: bool = typer.Option(False, "--no-progress", help="No progress bar."),
) -> None:
    """One verdict per file: C2PA manifest + footage tags + detector, with reasons and named conflicts."""
    from .batch import check_paths, default_results_path, summary_table
    from .options import make_options
    from .report_json import document, to_json

    if jobs < 0:
        raise CheckInputError("--jobs must be 0 (all cores) or more")
    opts = make_options(config, trust_anchors=trust_anchor, trust_lists=trust_list, revoked=revoked, tags=tags,
                        tag_key=tag_key, detector=detector, no_detector=no_detector, frames=frames, device=device,
                        allow_remote=allow_remote, store=store, media=html_out is not None)
    if device not in ("cpu", "cuda", "auto"):
        raise CheckInputError(f"--device must be cpu, cuda or auto, not {device!r}")
    err = lambda m: typer.echo(m, err=True)  # noqa: E731
    if opts.allow_remote:
        err("note: --allow-remote: a manifest stored at a URL the file names may be fetched from that host")
    several = len(inputs) > 1 or any(Path(p).is_dir() for p in inputs)
    res_path = results if results is not None else (default_results_path(inputs, opts) if several else None)

    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from swap.progress import progress_bar

    bar = progress_bar(TextColumn("checking"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                       TimeRemainingColumn(), TextColumn("{task.fields[last]}"), disable=no_progress or not several)
    with bar:
        task = bar.add_task("check", total=None, last="")

        def progress(done, total, rec) -> None:
            last = os.path.basename(rec.get("path", "")) + (f": {rec['verdict']['word']}" if rec else "")
            bar.update(task, completed=done, total=total, last=last[-50:])
        records, skipped = check_paths(inputs, opts, jobs=jobs or None, results=res_path, fresh=fresh,
                                       progress=progress, on_note=err, start_method=_start_method(opts))
    if not records:
        raise CheckInputError("nothing to check: " + ("; ".join(f"{n} {w}" for w, n in skipped.items()) or "no files"))
    named = {os.path.realpath(p) for p in inputs if Path(p).is_file()}
    code = 0
    for r in records:
        c = r["verdict"]["exit_code"]
        if c == 2 and os.path.realpath(r["path"]) not in named:
            c = 1                   # an unreadable file found in a folder: not trusted, the others still count
        code = max(code, c)
    doc = document(records, skipped, exit_code=code)
    if html_out is not None:
        from .report_html import write_html

        pages = write_html(records, html_out, doc["summary"])
        err(f"HTML report: {pages[0]}" + (f" (+{len(pages) - 1} file pages in {pages[1].parent})" if len(pages) > 1 else ""))
    if as_json:
        sys.stdout.write(to_json(doc) + "\n")
    else:
        if not several:
            _print_file(records[0], typer.echo)
        else:
            summary_table(records, skipped)
        if res_path is not None and several:
            err(f"results: {res_path} (a re-run continues from it; --fresh starts over)")
    raise typer.Exit(code)
