"""Read and validate a file's C2PA manifest into a stable, versioned `VerifyReport`.

States follow c2pa's own verdict (its Reader's validation state), so any C2PA file reads here as it reads
in c2pa-rs: "trusted" (c2pa: Trusted), "valid-untrusted" (Valid: intact, but the signer, an ingredient's
signer or an identity credential is not vouched for), "invalid" (Invalid: tampered, expired, bad
signature...; also a signer listed in a revocation file you gave), "no-manifest".
Exit codes: 0 trusted, 1 otherwise; unusable input (missing file, unsupported or unparseable container)
raises ProvenanceError (exit 2).

Nothing is fetched from the network unless `allow_remote=True`: remote manifests (a URL written inside
the file) and OCSP are off in every c2pa context made here.
"""
from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any, Dict, Iterable, List, Tuple, Union

import c2pa
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

# the records and the report builder live in c2pa_records / c2pa_report; every name stays importable here
from .c2pa_records import (AI_KINDS, CAWG_PREFIX, CODE_WORDS, IPTC, SCHEMA_VERSION, TOLERATED,  # noqa: F401
                           TOLERATED_PREFIX, TRAINED, CawgIdentity, Certificate, Finding, VerifyReport, _tolerated)
from .c2pa_report import (_actions, _assertions, _attr, _brand, _cawg, _certificate, _codes,  # noqa: F401
                          _finding, _report, _warnings, ai_declaration)
from .c2pa_store import FileScan, scan_file
from .errors import ProvenanceError
from .revocation import find_revoked, load_revocations

# ------------------------------------------------------------------------------------------ context

_ANCHOR_PEM: Dict[bytes, str] = {}      # anchor file contents -> its certificates, checked, as PEM


def _load_anchor(a: Union[str, Path, bytes]) -> str:
    """Anchor given as PEM bytes/text or as a path to a PEM file (read every time, parsed once per
    content); checked to hold certificates."""
    if isinstance(a, bytes) or (isinstance(a, str) and "-----BEGIN" in a):
        data = a if isinstance(a, bytes) else a.encode()
        where = "trust anchor"
    else:
        where = str(a)
        try:
            data = Path(a).read_bytes()
        except (FileNotFoundError, IsADirectoryError):
            raise ProvenanceError(f"no trust anchor file: {a}") from None
    pem = _ANCHOR_PEM.get(data)
    if pem is None:
        try:
            certs = x509.load_pem_x509_certificates(data)
        except ValueError:
            raise ProvenanceError(f"not a PEM certificate: {where}") from None
        pem = "".join(c.public_bytes(Encoding.PEM).decode() for c in certs)
        if len(_ANCHOR_PEM) >= 64:
            _ANCHOR_PEM.clear()
        _ANCHOR_PEM[data] = pem
    return pem


def settings(anchors: List[str], allow_remote: bool = False) -> Dict[str, Any]:
    """The c2pa settings every read uses: no network unless `allow_remote` (remote manifests, OCSP)."""
    cfg: Dict[str, Any] = {"verify": {"remote_manifest_fetch": bool(allow_remote), "ocsp_fetch": False,
                                      "verify_trust": True}}
    if not allow_remote:
        cfg["core"] = {"allowed_network_hosts": []}
    if anchors:
        cfg["trust"] = {"trust_anchors": "".join(anchors)}
    return cfg


def _context(anchors: List[str], allow_remote: bool = False) -> c2pa.Context:
    return c2pa.Context.from_dict(settings(anchors, allow_remote))


@functools.lru_cache(maxsize=1)
def _readable_types() -> Tuple[str, ...]:
    return tuple(sorted(t for t in c2pa.Reader.get_supported_mime_types() if "/" not in t))


def readable_types() -> List[str]:
    """File extensions (lowercase, no dot) c2pa's Reader takes (asked of the library once a process)."""
    return list(_readable_types())


def _error_state(path: Path, e: c2pa.C2paError, allow_remote: bool) -> VerifyReport:
    msg = (str(e) or type(e).__name__).strip().splitlines()[0]
    if isinstance(e, c2pa.C2paError.ManifestNotFound):
        return VerifyReport(str(path), "no-manifest", remote_fetch=allow_remote)
    if isinstance(e, c2pa.C2paError.RemoteManifest) or "remote" in msg.lower():
        url = next((w for w in msg.split() if w.startswith(("http://", "https://"))), None)
        words = CODE_WORDS["manifest.remote.notFetched"] if not allow_remote else \
            f"the remote manifest could not be fetched: {msg}"
        return VerifyReport(str(path), "no-manifest", remote_manifest=url, remote_fetch=allow_remote,
                            failures=[Finding("manifest.remote.notFetched" if not allow_remote
                                              else "manifest.inaccessible", words, msg)])
    if isinstance(e, (c2pa.C2paError.NotSupported, c2pa.C2paError.Io)) or "could not be parsed" in msg:
        raise ProvenanceError(f"cannot read {path.name} as a C2PA-capable file: {msg}") from None
    # a manifest is there but cannot even be decoded: tampered (or forged) manifest data
    return VerifyReport(str(path), "invalid", remote_fetch=allow_remote,
                        failures=[Finding("manifest.unreadable", f"the manifest is corrupt: {msg}", msg)])


# ------------------------------------------------------------------------------------------ verify

def _crjson(reader: "c2pa.Reader") -> Dict[str, Any]:
    try:
        return json.loads(reader.crjson())
    except (c2pa.C2paError, ValueError):
        return {}


def read_manifest(reader: "c2pa.Reader") -> Tuple[Dict[str, Any], Any, Dict[str, Any], Dict[str, Any]]:
    """What a report is built from: the manifest store (JSON), c2pa's validation state and results, and its
    crJSON ({} where c2pa cannot give it)."""
    store = json.loads(reader.json())
    state = reader.get_validation_state()
    results = reader.get_validation_results() or {}
    return store, state, results, _crjson(reader)


def _scan(path: Path) -> FileScan:
    try:
        return scan_file(path)
    except OSError:
        return FileScan(None, None)


def verify_file(path: Union[str, Path], trust_anchors: Iterable[Union[str, Path, bytes]] = (),
                revoked: Iterable[Union[str, Path]] = (), allow_remote: bool = False,
                trust_lists: Iterable[Union[str, Path, bytes]] = ()) -> VerifyReport:
    """Validate `path`'s C2PA manifest; `trust_anchors` are root certificates (PEM paths or text) and
    `trust_lists` PEM bundles of them (such as the C2PA trust list: the same thing, many at once),
    `revoked` CRL / certificate / deny-list files (provenance.revocation). Never touches the network
    unless `allow_remote` (then a manifest stored at a URL the file names may be fetched)."""
    path = Path(path)
    if not path.is_file():
        raise ProvenanceError(f"no such file: {path}")
    anchors = [_load_anchor(a) for a in (*trust_anchors, *trust_lists)]
    deny = load_revocations(revoked)
    ext = path.suffix.lower().lstrip(".")
    fmt = ext if ext in _readable_types() else None  # None lets c2pa detect the type from the bytes
    ctx = None
    try:
        ctx = _context(anchors, allow_remote)
        with open(path, "rb") as f, c2pa.Reader(fmt, f, context=ctx) as reader:
            store = json.loads(reader.json())
            state = reader.get_validation_state()
            results = reader.get_validation_results() or {}
            remote = None if reader.is_embedded() else reader.get_remote_url()
            # the store, chain and unsigned bytes read from the file itself (only the parts that hold
            # them); crJSON only where the chain cannot be read (a second serialisation of the store)
            report, cid = _report(path, store, state, results, lambda: _crjson(reader), _scan(path))
    except c2pa.C2paError as e:
        report = _error_state(path, e, allow_remote)
        report.trust_anchors = len(anchors)
        return report
    finally:
        if ctx is not None:
            ctx.close()
    report.trust_anchors = len(anchors)
    report.remote_manifest, report.remote_fetch = remote, allow_remote
    hit = find_revoked(cid, deny)
    if hit is not None:
        how = "fingerprint" if hit.fingerprint and cid and hit.fingerprint == cid.fingerprint else \
            "issuer + serial"
        report.failures.append(Finding("signingCredential.revoked",
                                       f"{CODE_WORDS['signingCredential.revoked']} (listed in {hit.source}, "
                                       f"matched by {how})"))
        report.state = "invalid"
    return report
