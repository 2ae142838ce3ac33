"""`veriswap model MODEL_DIR`: thin CLI over `swap.models.inspect` (what a model folder holds, is it sound;
registered by veriswap.cli)."""
from __future__ import annotations

import json
from pathlib import Path

import typer


def model_command(
    model_dir: Path = typer.Argument(..., help="Model folder (from `veriswap train`)."),
    as_json: bool = typer.Option(False, "--json", help="Print the facts as JSON."),
) -> None:
    """Show a model folder and check it (hashes, NaN/inf weights).

    Architecture, identities, iteration, losses, origin, snapshots. Exit 0 = the checkpoint train/convert
    would load is sound, 1 = it is not."""
    from .inspect import inspect_model

    m = inspect_model(model_dir)
    if as_json:
        typer.echo(json.dumps(m.to_dict(), indent=1))
    else:
        ids = ", ".join(f"{k} = {v['name']} ({v['faces']} faces)" for k, v in sorted(m.identities.items()))
        hours = f"{m.elapsed_s / 3600:.2f} h" if m.elapsed_s else "-"
        loss = m.last_loss or {}
        lines = [f"model      {m.architecture} {m.resolution}px, {m.parameters / 1e6:.1f} M parameters"
                 + (", learned mask" if m.has_mask else "") + f", coverage {m.coverage:g}",
                 f"identities {ids}",
                 f"trained    {hours}" + (f"; loss A {loss['loss_a']:.4f}, B {loss['loss_b']:.4f}"
                                         if "loss_a" in loss else ""),
                 f"weights    sha256:{m.weights_sha256}"]
        if m.identity_check:
            ic = m.identity_check
            from ..quality import identity_check_line
            lines.append(f"identity   {identity_check_line(ic)} (iteration {ic.get('iteration')})")
        if m.initialised_from:
            src = m.initialised_from
            lines.append(f"started    from the {src['parts']} of {src['model_dir']} (iteration {src['iteration']})")
        for c in m.checkpoints:
            state = ("ok" if c.ok else f"NaN/inf in {len(c.nonfinite)} weights (e.g. {c.nonfinite[0]})"
                     if c.verified else f"damaged: {c.problem}")
            it = f"iteration {c.iteration}, saved {c.saved_at} ({c.reason})" if c.verified else ""
            lines.append(f"{c.which:<10} {it + ': ' if it else ''}{state}"
                         + ("  <- loaded by train/convert" if c is m.used else ""))
        if m.best:
            lines.append(f"best       iteration {m.best['iteration']} (interval loss {m.best['loss']:.4f}) in "
                         f"{Path(m.folder) / 'best'}")
        if m.snapshots:
            lines.append(f"snapshots  {len(m.snapshots)}: iterations {', '.join(map(str, m.snapshots[-5:]))}"
                         + (" (last 5)" if len(m.snapshots) > 5 else ""))
        if m.stale_temps:
            what = (f"being written by {m.in_use_by}" if m.in_use_by else
                    "left by an interrupted save; the next `veriswap train` on this folder removes them")
            lines.append(f"temp files {len(m.stale_temps)} ({m.stale_temps_bytes / 1e6:.1f} MB, e.g. "
                         f"{m.stale_temps[0]}): {what}")
        typer.echo("\n".join(lines))
    if not m.ok:
        raise typer.Exit(1)
