"""`veriswap provenance watermark FILE`: find the watermark, recover the manifest from the store."""
from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer

# the heavy parts (numpy, OpenCV, PyAV, c2pa) are imported when a command runs, not when the CLI loads
store_app = typer.Typer(help="The local manifest store that watermarks resolve against: list, export, import.",
                        no_args_is_help=True)
STORE_HELP = "Manifest store folder (default: $VERISWAP_HOME/manifests, where convert keeps them)."


def _short_model(swap: Optional[dict], rec: dict) -> str:
    if swap:
        h = str(swap.get("model_hash") or "")
        name = swap.get("model_name")
        return f"{h[:23]}" + (f" ({name})" if name else "")
    return rec.get("model") or "?"


def describe(res) -> str:
    """The one-line verdict for a file whose watermark was found."""
    b = res.best
    if b is None:
        return (f"veriswap watermark {res.detection.payload_id}, but no manifest for it in the store "
                f"{res.store} (import the signer's store with `veriswap provenance store import`)")
    rep, rec = b.report, b.record
    what = "veriswap swap" if rep.get("swap") else "veriswap-signed media"
    src = (rep.get("swap") or {}).get("source") or rec.get("source") or "?"
    return (f"{what}, manifest recovered from the store: signed by {rep.get('signer') or rec.get('signer') or '?'} "
            f"at {rep.get('signed_at') or rec.get('signed_at') or '?'}, model {_short_model(rep.get('swap'), rec)}, "
            f"source {src}")


def watermark(
    file: Path = typer.Argument(..., help="Video or image to search (metadata may be gone)."),
    store: Optional[Path] = typer.Option(None, "--store", help=STORE_HELP),
    trust_anchor: List[Path] = typer.Option([], "--trust-anchor", help="Root certificate PEM to trust when "
                                            "verifying the recovered manifest (repeatable)."),
    max_frames: Optional[int] = typer.Option(None, "--max-frames", min=1, help="Search only the first N frames."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Decode veriswap's invisible watermark and recover the signed manifest it points to.

    Exit 0: watermark found and its manifest recovered with an intact signature (chaining to a given
    --trust-anchor); 1: no watermark, no manifest for it, or the manifest fails; 2: unusable input."""
    from ..store import ManifestStore
    from .core import DETECT_Z
    from .resolve import resolve

    res = resolve(file, ManifestStore(store), trust_anchor, max_frames=max_frames)
    code = res.exit_code(anchors=bool(trust_anchor))
    if as_json:
        typer.echo(json.dumps(res.to_dict(), indent=1, sort_keys=True))
        raise typer.Exit(code)
    d = res.detection
    if not d.found:
        typer.secho(f"NO WATERMARK  {file}", fg="yellow", bold=True)
        typer.echo(f"  searched    {d.frames_total} frames (best codeword z {d.z:.1f}, needs a valid CRC "
                   f"and z >= {DETECT_Z:g})")
        raise typer.Exit(code)
    typer.secho(f"WATERMARK FOUND  {file}", fg="green", bold=True)
    typer.echo(f"  payload     {d.payload_id}  ({d.alg} v{d.version}{', mirrored picture' if d.mirrored else ''})")
    typer.echo(f"  confidence  z {d.z:.1f}, {d.bit_confidence:.1%} of coded bits agree")
    shown = d.frames if len(d.frames) <= 60 else d.frames[:57].rsplit(",", 1)[0] + ",..."
    typer.echo(f"  frames      found in {d.frames_found} of {d.frames_total}" + (f" ({shown})" if d.frames else ""))
    typer.echo(f"  store       {res.store}: {len(res.recovered)} manifest(s) with this id")
    b = res.best
    typer.secho(f"  {describe(res)}", fg="green" if b is not None and code == 0 else "yellow")
    if b is not None:
        rep = b.report
        words = {"intact-trusted": "signature valid, signer TRUSTED",
                 "intact-untrusted": "signature valid, signer not checked against a trust anchor"
                 if not trust_anchor else "signature valid, signer UNTRUSTED",
                 "invalid": "manifest INVALID"}[b.state]
        typer.echo(f"  manifest    {rec_label(b)}: {words}")
        if b.content_changed:
            typer.echo("  content     pixels/bytes differ from what was signed (expected for a stripped or "
                       "re-encoded copy: the watermark, not the hash, binds it)")
        if rep.get("ai_generated"):
            typer.echo("  AI-made     yes: " + ", ".join(s.rsplit("/", 1)[-1] for s in rep.get("digital_source_types", [])))
        for p in b.problems:
            typer.secho(f"  problem     {p}", fg="red")
    raise typer.Exit(code)


def rec_label(b) -> str:
    return b.record.get("manifest_label") or "?"


@store_app.command("list")
def store_list(store: Optional[Path] = typer.Option(None, "--store", help=STORE_HELP),
               as_json: bool = typer.Option(False, "--json", help="Print the records as JSON.")) -> None:
    """List the manifests in the store (id, label, signer, time, source)."""
    from ..store import ManifestStore

    st = ManifestStore(store)
    recs = list(st.records())
    if as_json:
        typer.echo(json.dumps([json.loads(r.to_json()) for r in recs], indent=1))
        return
    for r in recs:
        typer.echo(f"{r.payload_id}  {r.manifest_label}  {r.signed_at or '?'}  {r.title or '?'}  "
                   f"source {r.source or '?'}  signed by {r.signer or '?'}")
    typer.echo(f"store {st.root}: {len(recs)} manifest(s)")


@store_app.command("export")
def store_export(dest: Path = typer.Argument(..., help="Folder to copy the store into (created)."),
                 store: Optional[Path] = typer.Option(None, "--store", help=STORE_HELP)) -> None:
    """Copy the store (checked record by record) into a folder to share."""
    from ..store import ManifestStore

    n = ManifestStore(store).export(dest)
    typer.echo(f"exported {n} manifest(s) to {dest}")


@store_app.command("import")
def store_import(src: Path = typer.Argument(..., help="A store folder someone exported."),
                 store: Optional[Path] = typer.Option(None, "--store", help=STORE_HELP)) -> None:
    """Add every manifest of an exported store folder to this store (all checked first)."""
    from ..store import ManifestStore

    st = ManifestStore(store)
    n = st.import_from(src)
    typer.echo(f"imported {n} manifest(s) into {st.root}")
