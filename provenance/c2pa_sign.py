"""Embed a signed C2PA manifest (Ed25519) into MP4/MOV (BMFF hash), JPEG or PNG.

With `SwapFacts` the manifest declares a face swap: `c2pa.opened` on the source video (a `parentOf`
ingredient) then `c2pa.edited` with digitalSourceType compositeWithTrainedAlgorithmicMedia, plus an
`org.veriswap.swap` assertion holding the facts. Without facts it declares `c2pa.opened` of the file
itself (generic media, provenance chain kept if the file already had a manifest).
"""
from __future__ import annotations

import datetime as dt
import mimetypes
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import c2pa

from . import __version__
from .errors import ProvenanceError, UnsupportedMediaError
from .fsutil import atomic_open
from .keys import Identity

SWAP_LABEL = "org.veriswap.swap"
SIGN_LABEL = "org.veriswap.signing"
IPTC = "http://cv.iptc.org/newscodes/digitalsourcetype/"
COMPOSITE_AI = IPTC + "compositeWithTrainedAlgorithmicMedia"
GENERATOR = "veriswap"

OUT_BUFFER = 1 << 20  # write buffer of the signed output file

# extension -> MIME type c2pa-rs signs; WebM/MKV are not supported by C2PA (no defined binding)
SIGNABLE = {
    ".mp4": "video/mp4", ".m4v": "video/mp4", ".mov": "video/quicktime",
    ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png",
}


@dataclass
class SwapFacts:
    """What `convert` did, recorded in the `org.veriswap.swap` assertion."""

    model_hash: str                      # content hash of the model weights, e.g. "sha256:..."
    direction: str                       # "a2b" or "b2a"
    identities: Dict[str, str]           # e.g. {"a": "astronaut", "b": "grace_hopper"}
    frames_total: int
    frames_swapped: int
    faces_swapped: int
    source: Optional[str] = None         # source video (its file name goes into the manifest)
    tool_version: str = __version__
    model_name: Optional[str] = None     # architecture, e.g. "original"
    labels_file: Optional[str] = None    # per-frame labels written beside the output
    swapped_frames: Optional[str] = None  # the frame indices swapped, as ranges: "2-5,12-15"
    extra: Dict[str, Any] = field(default_factory=dict)

    def to_assertion(self) -> Dict[str, Any]:
        d = {k: v for k, v in asdict(self).items() if v is not None and k != "extra"}
        for k in ("source", "labels_file"):  # no local directory layout in a published manifest
            if d.get(k) is not None:
                d[k] = Path(d[k]).name
        d.update(self.extra)
        return d


@dataclass
class SignResult:
    out: Path
    manifest_label: Optional[str]
    manifest_bytes: int
    definition: Dict[str, Any]           # the manifest definition that was signed


def media_type(path: Path) -> str:
    ext = Path(path).suffix.lower()
    if ext in SIGNABLE:
        return SIGNABLE[ext]
    guess = mimetypes.guess_type(str(path))[0] or "unknown type"
    raise UnsupportedMediaError(
        f"cannot sign {Path(path).name} ({guess}): C2PA signing supports MP4/MOV, JPEG and PNG")


VIDEO_TYPES = ("video/mp4", "video/quicktime")


def check_media(path: Path, fmt: str) -> None:
    """Refuse to sign what does not read as the media it claims to be (exit 2, one line), as `tag` does:
    a video must demux to the end with every packet its index lists; an image must decode. Signing a
    truncated file would vouch for bytes no player can show."""
    path = Path(path)
    if fmt in VIDEO_TYPES:
        import av

        size = path.stat().st_size
        try:
            with av.open(str(path)) as c:
                if not c.streams.video:
                    raise ProvenanceError(f"cannot sign {path.name}: no video stream in it")
                want = {s.index: s.frames for s in c.streams}
                got = dict.fromkeys(want, 0)
                for pkt in c.demux():
                    if pkt.size:
                        got[pkt.stream.index] = got.get(pkt.stream.index, 0) + 1
                        if pkt.pos is not None and pkt.pos >= 0 and pkt.pos + pkt.size > size:
                            raise ProvenanceError(f"cannot sign {path.name}: truncated (a packet ends past the "
                                                  f"end of the file)")
        except av.error.FFmpegError as e:
            raise ProvenanceError(f"cannot sign {path.name}: not a readable video ({type(e).__name__}: "
                                  f"truncated or damaged)") from None
        short = [(i, got.get(i, 0), n) for i, n in want.items() if n and got.get(i, 0) < n]
        if short:
            i, n_got, n_want = short[0]
            raise ProvenanceError(f"cannot sign {path.name}: truncated (stream {i} has {n_got} of the {n_want} "
                                  f"packets its index lists)")
        if not any(got.values()):
            raise ProvenanceError(f"cannot sign {path.name}: no media packets in it")
    else:
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(path) as im:
                im.load()
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
            raise ProvenanceError(f"cannot sign {path.name}: not a readable image ({_one_line(e)})") from None


def _ftyp_hex(path: Path) -> Optional[str]:
    """The ftyp box of a BMFF file, hex: recorded in the signed manifest because C2PA's BMFF hash does not
    cover it, so verify can tell when it was changed."""
    from .c2pa_store import ftyp_box

    with open(path, "rb") as f:
        box = ftyp_box(f.read(4096))
    return box.hex() if box else None


def build_definition(title: str, facts: Optional[SwapFacts], source_title: Optional[str],
                     signed_at: str, ftyp: Optional[str] = None) -> Dict[str, Any]:
    """The manifest definition; ingredient labels are local names that actions refer to."""
    agent = {"name": GENERATOR, "version": __version__}
    actions: List[Dict[str, Any]] = [{
        "action": "c2pa.opened",
        "softwareAgent": agent,
        "parameters": {"ingredientIds": ["parent"]},
    }]
    assertions: List[Dict[str, Any]] = []
    if facts is not None:
        actions.append({
            "action": "c2pa.edited",
            "softwareAgent": agent,
            "digitalSourceType": COMPOSITE_AI,
            "description": (f"face swap ({facts.direction}): {facts.faces_swapped} faces in "
                            f"{facts.frames_swapped} of {facts.frames_total} frames"),
        })
        assertions.append({"label": SWAP_LABEL, "data": facts.to_assertion()})
    # the signing time claimed by the signer (a TSA timestamp, when used, is the attested one)
    signing: Dict[str, Any] = {"signed_at": signed_at, "source": source_title}
    if ftyp:
        signing["ftyp"] = ftyp     # the (unhashed) ftyp box as signed: verify warns if it changes
    assertions.append({"label": SIGN_LABEL, "data": signing})
    assertions.insert(0, {"label": "c2pa.actions", "data": {"actions": actions}})
    return {
        "claim_generator_info": [{"name": GENERATOR, "version": __version__}],
        "title": title,
        "assertions": assertions,
    }


def _signer(identity: Identity, tsa_url: Optional[str]) -> c2pa.Signer:
    # a callback keeps the private key in Python (it may have been decrypted from a passphrase-protected
    # file) instead of handing PEM text to the native library
    try:
        return c2pa.Signer.from_callback(identity.sign, c2pa.C2paSigningAlg.ED25519,
                                         identity.chain_pem.decode(), tsa_url)
    except c2pa.C2paError as e:
        raise ProvenanceError(f"cannot create a C2PA signer from {identity.key_dir}: {e}") from None


def sign_file(src: Path, out: Optional[Path], identity: Identity, facts: Optional[SwapFacts] = None,
              source: Optional[Path] = None, tsa_url: Optional[str] = None, label: Optional[str] = None,
              assertions: Sequence[Dict[str, Any]] = ()) -> SignResult:
    """Sign `src` into `out` (atomic; `out=None` or out == src signs in place). `source` is the
    original the file was made from (defaults to facts.source, else `src` itself): it becomes the
    `parentOf` ingredient, carrying its own manifest along if it has one. `label` fixes the manifest's
    label (urn:c2pa:<uuid>) in advance and `assertions` are added as given (the watermark's
    soft-binding assertion names the label before signing: provenance.watermark.binding)."""
    src = Path(src)
    out = Path(out) if out is not None else src
    if not src.is_file():
        raise ProvenanceError(f"no such file: {src}")
    fmt = media_type(src)
    if Path(out).suffix.lower() != src.suffix.lower():
        raise ProvenanceError(f"output {out.name} must keep the input's extension ({src.suffix})")
    parent = Path(source) if source is not None else (
        Path(facts.source) if facts is not None and facts.source else src)
    if not parent.is_file():
        raise ProvenanceError(f"no such source file: {parent}")
    if tsa_url is not None and not tsa_url.startswith(("http://", "https://")):
        raise ProvenanceError(f"--tsa-url must be an http(s) URL, got {tsa_url!r}")
    check_media(src, fmt)
    signed_at = dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat()
    ftyp = _ftyp_hex(src) if fmt in VIDEO_TYPES else None
    definition = build_definition(out.name, facts, parent.name, signed_at, ftyp)
    if label is not None:
        definition["label"] = label
    definition["assertions"].extend(assertions)
    try:
        # reading the ingredient must not fetch a remote manifest it names (no network but the TSA's)
        cfg: Dict[str, Any] = {"verify": {"remote_manifest_fetch": False, "ocsp_fetch": False}}
        if tsa_url is None:
            cfg["core"] = {"allowed_network_hosts": []}
        ctx = c2pa.Context.from_dict(cfg)
        try:
            builder = c2pa.Builder(definition, context=ctx)
        except BaseException:
            ctx.close()
            raise
        with open(parent, "rb") as pf:
            parent_fmt = SIGNABLE.get(parent.suffix.lower()) or (mimetypes.guess_type(str(parent))[0]
                                                                   or "application/octet-stream")
            builder.add_ingredient({"title": parent.name, "relationship": "parentOf", "label": "parent"},
                                   parent_fmt, pf)
        signer = _signer(identity, tsa_url)
        try:
            # c2pa-rs writes the signed asset through c2pa-python's stream callback in 8 KiB pieces:
            # a 1 MiB buffer turns ~22k write() calls per 180 MB into ~180 (about -15% signing time)
            with open(src, "rb") as sf, atomic_open(out, mode=_mode_of(src), buffering=OUT_BUFFER) as df:
                manifest = builder.sign(signer, fmt, sf, df)
        finally:
            signer.close()
            builder.close()
            ctx.close()
    except c2pa.C2paError as e:
        raise ProvenanceError(f"C2PA signing of {src.name} failed: {_one_line(e)}") from None
    return SignResult(out, active_label(manifest), len(manifest), definition)


# JUMBF description box of a manifest: type UUID "c2ma" + C2PA suffix, a toggles byte, then the label
_MANIFEST_BOX = re.compile(rb"c2ma\x00\x11\x00\x10\x80\x00\x00\xaa\x00\x38\x9b\x71.(urn:c2pa:[0-9a-fA-F-]{36})",
                           re.S)


def active_label(store: bytes) -> Optional[str]:
    """Label of the active manifest of a JUMBF manifest store (the last manifest box in it)."""
    labels = _MANIFEST_BOX.findall(store)
    return labels[-1].decode() if labels else None


def _mode_of(path: Path) -> int:
    return os.stat(path).st_mode & 0o777


def _one_line(e: Exception) -> str:
    return (str(e) or type(e).__name__).strip().splitlines()[0]
