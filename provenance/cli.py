"""`veriswap provenance ...`: a thin layer over keys, c2pa_sign, c2pa_verify and tags.

Exit codes: 0 success / trusted / authentic; 1 a check failed (tampered, untrusted, no manifest);
2 unusable input (raised as ProvenanceError and printed as one line by the root CLI).
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Callable, Iterator, List, Optional

import typer

from . import keys as keymod
from .errors import ProvenanceError

app = typer.Typer(help="Keys, C2PA signing/verification, and tamper-evident footage tags.",
                  no_args_is_help=True)

PASS_ENV_HELP = "Read the key passphrase from this environment variable (never from the command line)."


def _passphrase(env: Optional[str], prompt: bool = False, confirm: bool = False) -> Optional[bytes]:
    if env:
        val = os.environ.get(env)
        if not val:
            raise ProvenanceError(f"environment variable {env} is not set or empty")
        return val.encode()
    if prompt:
        if not sys.stdin.isatty():
            raise ProvenanceError("no terminal to ask for the passphrase on (--prompt-passphrase); "
                                  "give it in an environment variable with --passphrase-env VAR")
        return typer.prompt("Passphrase", hide_input=True, confirmation_prompt=confirm, err=True).encode()
    return None


def _passphrase_for(key_file: Path, env: Optional[str]) -> Optional[bytes]:
    """Passphrase from the env var; else a prompt, but only for an encrypted key on a terminal."""
    if env:
        return _passphrase(env)
    if keymod.key_is_encrypted(key_file) and sys.stdin.isatty():
        return _passphrase(None, prompt=True)
    return None


def _progress(path: Path, label: str):
    """A rich progress bar over the file's bytes (only on a terminal and for big files)."""
    import contextlib

    size = path.stat().st_size if path.is_file() else 0
    if not sys.stderr.isatty() or size < 64 * 2 ** 20:
        return contextlib.nullcontext(None)

    @contextlib.contextmanager
    def bar() -> Iterator[Callable[[int], None]]:
        from rich.console import Console
        from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

        with Progress("[progress.description]{task.description}", BarColumn(), DownloadColumn(),
                      TransferSpeedColumn(), console=Console(stderr=True), transient=True) as p:
            task = p.add_task(label, total=size)
            yield lambda done: p.update(task, completed=done)

    return bar()


@app.command()
def keygen(
    out: Path = typer.Option(..., "-o", "--out", help="Folder for the new identity."),
    name: str = typer.Option("veriswap local", "--name", help="Organisation name in the certificates."),
    passphrase_env: Optional[str] = typer.Option(None, "--passphrase-env", help=PASS_ENV_HELP),
    prompt: bool = typer.Option(False, "--prompt-passphrase", help="Ask for a passphrase to encrypt the keys."),
    days: int = typer.Option(keymod.DEFAULT_DAYS, "--days", help="Root certificate validity in days."),
    force: bool = typer.Option(False, "--force", help="Overwrite keys already in OUT."),
) -> None:
    """Create an Ed25519 root CA + C2PA signing certificate, and an HMAC secret for footage tags."""
    pw = _passphrase(passphrase_env, prompt, confirm=True)
    ident = keymod.generate_identity(out, name=name, passphrase=pw, days=days, overwrite=force)
    cert = ident.certificate
    secret_files = ", ".join(keymod.ENCRYPTED_FILES)
    typer.echo(f"identity   {out}  (secrets {secret_files}: mode 0600, "
               f"{'all three encrypted with the passphrase' if pw else 'NOT encrypted (no passphrase given)'}; "
               f"{keymod.ROOT_CERT}, {keymod.SIGNER_CERT}: public)")
    typer.echo(f"signer     {cert.subject.rfc4514_string()}  Ed25519, valid until "
               f"{cert.not_valid_after_utc:%Y-%m-%d}")
    typer.echo(f"trust      give verifiers {out / keymod.ROOT_CERT} (--trust-anchor)")
    typer.echo(f"tags       HMAC secret {out / keymod.TAG_KEY}; Ed25519 tags: {out / keymod.SIGNER_KEY}"
               f" to tag, {out / keymod.SIGNER_CERT} to check")


@app.command()
def sign(
    file: Path = typer.Argument(..., help="MP4/MOV, JPEG or PNG to sign."),
    key_dir: Optional[Path] = typer.Option(None, "-k", "--key", help="Identity folder (default: the local "
                                           "identity in $VERISWAP_HOME/identity, created on first use)."),
    out: Optional[Path] = typer.Option(None, "-o", "--out", help="Signed copy (default: sign in place)."),
    source: Optional[Path] = typer.Option(None, "--source", help="Original the file was made from "
                                          "(recorded as its parentOf ingredient)."),
    tsa_url: Optional[str] = typer.Option(None, "--tsa-url", help="RFC 3161 timestamp authority (online)."),
    passphrase_env: Optional[str] = typer.Option(None, "--passphrase-env", help=PASS_ENV_HELP),
) -> None:
    """Embed a signed C2PA manifest (Ed25519) into FILE."""
    from .c2pa_sign import sign_file

    if key_dir is None:
        d = keymod.default_identity_dir()
        ident = keymod.default_identity(_passphrase_for(d / keymod.SIGNER_KEY, passphrase_env))
    else:
        ident = keymod.load_identity(key_dir, _passphrase_for(Path(key_dir) / keymod.SIGNER_KEY, passphrase_env))
    res = sign_file(file, out, ident, source=source, tsa_url=tsa_url)
    typer.echo(f"signed     {res.out}")
    typer.echo(f"manifest   {res.manifest_label}  ({res.manifest_bytes} bytes)")
    typer.echo(f"signer     {ident.subject}")
    if ident.root_pem:
        typer.echo(f"trust      verify with --trust-anchor {ident.key_dir / keymod.ROOT_CERT}")


@app.command()
def verify(
    files: List[Path] = typer.Argument(..., help="File(s) to verify, or folders (searched recursively for "
                                       "every file type c2pa reads)."),
    trust_anchor: List[Path] = typer.Option([], "--trust-anchor", help="Root certificate PEM to trust "
                                            "(repeatable; a PEM bundle such as a C2PA trust list works too)."),
    revoked: List[Path] = typer.Option([], "--revoked", help="CRL (PEM/DER), PEM certificates or a sha256 "
                                       "deny list of revoked signers (repeatable): a file they signed is invalid."),
    allow_remote: bool = typer.Option(False, "--allow-remote", help="Let c2pa fetch a manifest from a URL "
                                      "written inside the file (off by default: verify never connects anywhere)."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Read and validate C2PA manifests. Exit 0 when every file is trusted; 1 when one is invalid,
    untrusted or has no manifest. Several files (or a folder): one line each and a tally."""
    from .c2pa_verify import verify_file

    paths, skipped = _expand_media(files)
    if len(paths) != 1 or files[0].is_dir():
        _verify_many(paths, skipped, trust_anchor, revoked, allow_remote, as_json)
        return
    file = paths[0]
    r = verify_file(file, trust_anchor, revoked, allow_remote=allow_remote)
    if as_json:
        typer.echo(r.to_json())
        raise typer.Exit(r.exit_code)
    print_report(r, file)
    raise typer.Exit(r.exit_code)


STATE_WORDS = {"trusted": ("TRUSTED", "green"), "valid-untrusted": ("VALID BUT UNTRUSTED", "yellow"),
               "invalid": ("INVALID", "red"), "no-manifest": ("NO MANIFEST", "yellow")}


def print_report(r, file: Path) -> None:
    """The one-screen summary of a VerifyReport (also what `veriswap check` can reuse)."""
    word, colour = STATE_WORDS[r.state]
    typer.secho(f"{word}  {file}" + ("  (with warnings)" if r.warnings and r.state != "no-manifest" else ""),
                fg=colour, bold=True)
    typer.echo(f"  network     {'remote manifests allowed (--allow-remote)' if r.remote_fetch else 'none (remote manifests not fetched)'}"
               + (f"; manifest at {r.remote_manifest}" if r.remote_manifest else ""))
    if r.state == "no-manifest":
        if not r.failures:
            typer.echo("  the file carries no C2PA manifest: nothing vouches for where it came from")
    else:
        c = r.certificate
        typer.echo(f"  signer      {r.signer_subject or r.signer or '?'}  ({r.algorithm or '?'})")
        typer.echo(f"  issuer      {r.issuer or '?'}")
        if c is not None:
            fp = f", sha256 {c.fingerprint_sha256}" if c.fingerprint_sha256 else ""
            typer.echo(f"  certificate serial {c.serial_hex}{fp}"
                       + ("" if c.source == "manifest" else " (from c2pa's summary; chain not readable)"))
        trust = {"trusted": "signer chains to a trust anchor you gave",
                 "untrusted": "signer does not chain to any trust anchor you gave",
                 "unknown": "not established"}[r.trust]
        typer.echo(f"  trust       {trust} ({r.trust_anchors} anchor file{'s' if r.trust_anchors != 1 else ''})")
        when = f"{r.signed_at} ({'timestamp authority' if r.time_source == 'tsa' else 'claimed by the signer'})" \
            if r.signed_at else "unknown (no timestamp)"
        typer.echo(f"  signed at   {when}")
        typer.echo(f"  generator   {r.claim_generator or '?'}")
        typer.echo(f"  AI          {r.ai_words}" + (f" [{r.ai_declaration}]" if r.ai_declaration != "none" else ""))
        for a in r.actions:
            desc = f" - {a['description']}" if a.get("description") else ""
            typer.echo(f"  action      {a.get('action')}{desc}")
        for i in r.ingredients:
            bad = f"; failed: {', '.join(i['failures'])}" if i.get("failures") else ""
            typer.echo(f"  ingredient  {i.get('title')} ({i.get('relationship')}"
                       f"{', has its own manifest' if i.get('has_manifest') else ''}{bad})")
        for ci in r.cawg_identity:
            who = ci.actor or "?"
            typer.echo(f"  identity    {who}" + (f" ({ci.organization})" if ci.organization else "")
                       + f": CAWG {ci.sig_type or 'identity'}, credential {ci.credential}")
        if r.swap:
            s = r.swap
            typer.echo(f"  face swap   {s.get('direction')} model {str(s.get('model_hash'))[:23]}  "
                       f"{s.get('faces_swapped')} faces in {s.get('frames_swapped')}/{s.get('frames_total')} frames"
                       + (f" ({s['swapped_frames']})" if s.get("swapped_frames") else ""))
    for f in r.failures:
        where = "" if f.where == "manifest" else f" [{f.where}]"
        typer.secho(f"  problem     {f.code}{where}: {f.words}", fg="red" if r.state == "invalid" else "yellow")
    for w in r.warnings:
        typer.secho(f"  warning     {w}", fg="yellow")
    if r.state == "valid-untrusted" and not r.trust_anchors:
        typer.echo("  hint        pass the signer's root certificate with --trust-anchor to check who signed")


# file names a folder walk never treats as media: sidecars veriswap writes itself
SIDECARS = (".tags", ".json", ".labels.json")


def _expand_media(paths: List[Path]):
    """Named files as given; folders walked recursively for every type c2pa reads. Returns the files and
    a count of what a walk skipped, by reason."""
    from .c2pa_verify import readable_types

    exts = set(readable_types())
    out: List[Path] = []
    skipped: dict = {}
    for p in paths:
        if not p.is_dir():
            out.append(p)
            continue
        found = []
        for q in sorted(p.rglob("*")):
            if q.is_dir():
                continue
            rel = q.relative_to(p)
            if any(part.startswith(".") for part in rel.parts):
                why = "hidden"
            elif not q.is_file():
                why = "not a regular file"
            elif q.suffix.lower().lstrip(".") in exts:
                found.append(q)
                continue
            elif q.name.endswith(SIDECARS):
                why = "veriswap sidecar (.tags/.json)"
            else:
                why = f"type c2pa does not read ({q.suffix.lower() or 'no extension'})"
            skipped[why] = skipped.get(why, 0) + 1
        if not found:
            raise ProvenanceError(f"no files c2pa can read in {p}"
                                  + (f" (skipped {sum(skipped.values())})" if skipped else ""))
        out.extend(found)
    return out, skipped


def _verify_many(paths: List[Path], skipped: dict, anchors: List[Path], revoked: List[Path], allow_remote: bool,
                 as_json: bool) -> None:
    """A dataset's worth: one line per file, a tally, exit 0 only when every file is trusted. A file that
    cannot be read at all counts as invalid here (its line says why) rather than stopping the others."""
    from .c2pa_verify import SCHEMA_VERSION, verify_file

    reports, states = [], []
    for p in paths:
        try:
            r = verify_file(p, anchors, revoked, allow_remote=allow_remote)
        except ProvenanceError as e:
            if "trust anchor" in str(e) or "revocation" in str(e) or "CRL" in str(e):
                raise  # a bad option, not a bad file: stop with exit 2
            reports.append({"path": str(p), "state": "invalid", "error": str(e), "schema_version": SCHEMA_VERSION})
            states.append("invalid")
            if not as_json:
                typer.secho(f"{'INVALID':<15} {p}  ({e})", fg="red")
            continue
        reports.append(r.to_dict() | {"path": str(p)})
        states.append(r.state)
        if not as_json:
            what = ("" if r.state == "no-manifest" else
                    f"  signed by {r.signer or '?'}" + (f", {r.ai_declaration}" if r.ai_declaration != "none" else "")
                    + (f"; {r.failures[0].code}" if r.failures else "")
                    + (f"; {len(r.warnings)} warning{'s' if len(r.warnings) != 1 else ''}" if r.warnings else ""))
            typer.secho(f"{r.state.upper():<15} {p}{what}",
                        fg={"trusted": "green", "invalid": "red"}.get(r.state, "yellow"))
    if as_json:
        typer.echo(json.dumps(reports, indent=1))
    else:
        tally = ", ".join(f"{states.count(k)} {k}" for k in ("trusted", "valid-untrusted", "invalid", "no-manifest"))
        typer.echo(f"verify: {len(paths)} files: {tally}")
        if skipped:
            typer.echo(f"skipped: {sum(skipped.values())} files: "
                       + ", ".join(f"{n} {why}" for why, n in sorted(skipped.items())))
    raise typer.Exit(0 if all(st == "trusted" for st in states) else 1)


@app.command()
def tag(
    video: Path = typer.Argument(..., help="Video to tag (camera side)."),
    key: Path = typer.Option(..., "--key", help="HMAC secret file (tag.key) or Ed25519 private key PEM."),
    mode: str = typer.Option("hmac", "--mode", help="hmac (shared secret) or ed25519 (public verification)."),
    out: Optional[Path] = typer.Option(None, "-o", "--out", help="Tag file (default: VIDEO.tags)."),
    group: int = typer.Option(32, "--group", help="Frames per Ed25519 signature."),
    passphrase_env: Optional[str] = typer.Option(None, "--passphrase-env", help=PASS_ENV_HELP),
) -> None:
    """Write a tag file: SHA-256 per coded frame, chained, with an HMAC per frame or a signature per group."""
    from .tags import load_tag_key, tag_video

    if mode not in ("hmac", "ed25519"):
        raise ProvenanceError(f"--mode must be hmac or ed25519, not {mode!r}")
    k = load_tag_key(key, _passphrase_for(key, passphrase_env))
    if mode == "hmac" and not isinstance(k, bytes):
        raise ProvenanceError(f"{key} is a PEM key: use --mode ed25519, or give the HMAC secret (tag.key)")
    if mode == "ed25519" and isinstance(k, bytes):
        raise ProvenanceError(f"{key} is not a PEM private key: ed25519 mode needs one (e.g. signer.key)")
    with _progress(video, "tag") as prog:
        path = tag_video(video, k, mode=mode, out=out, group=group, progress=prog)
    typer.echo(f"tagged     {video}")
    typer.echo(f"tags       {path}  ({mode}, {path.stat().st_size} bytes)")


@app.command()
def check(
    video: Path = typer.Argument(..., help="Video to check."),
    tags: Optional[Path] = typer.Option(None, "--tags", help="Tag file (default: VIDEO.tags)."),
    key: Path = typer.Option(..., "--key", help="HMAC secret, or Ed25519 public key / certificate PEM."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    passphrase_env: Optional[str] = typer.Option(None, "--passphrase-env", help=PASS_ENV_HELP),
) -> None:
    """Check VIDEO against its tags: per-frame status ('.' ok, N not authentic, M missing, X extra)."""
    from .tags import check_video, default_tags_path, load_tag_key

    k = load_tag_key(key, _passphrase_for(key, passphrase_env))
    tags = tags or default_tags_path(video)
    with _progress(video, "check") as prog:
        r = check_video(video, tags, k, progress=prog)
    if as_json:
        typer.echo(r.to_json())
        raise typer.Exit(r.exit_code)
    typer.secho(f"{'AUTHENTIC' if r.ok else 'TAMPERED'}  {video}", fg="green" if r.ok else "red", bold=True)
    typer.echo(f"  frames      {r.frames_video} in the video, {r.frames_tagged} tagged ({r.mode})")
    counts = ", ".join(f"{r.counts.get(c, 0)} {w}" for c, w in
                       (("." , "authentic"), ("N", "not authentic"), ("M", "missing"), ("X", "extra/moved")))
    typer.echo(f"  status      {counts}")
    for start in range(0, len(r.status), 100):
        row = r.status[start:start + 100]
        if len(r.status) <= 1000 or set(row) != {"."}:
            typer.echo(f"  {start:>9}   {row}")
    if r.first_bad:
        fb = r.first_bad
        where = f"video frame {fb.video_index}" if fb.video_index is not None else f"tagged frame {fb.tag_index}"
        t = f" at {fb.time:.3f} s" if fb.time is not None else ""
        typer.secho(f"  first bad   '{fb.status}' {where}{t}", fg="red")
    for p in r.problems:
        typer.secho(f"  problem     {p}", fg="red")
    raise typer.Exit(r.exit_code)


# invisible watermark (C2PA soft binding) and the manifest store it resolves against: provenance/watermark/cli.py
from .watermark import cli as _watermark_cli  # noqa: E402

app.command("watermark")(_watermark_cli.watermark)
app.add_typer(_watermark_cli.store_app, name="store")
