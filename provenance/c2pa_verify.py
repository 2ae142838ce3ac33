"""Read and validate a file's C2PA manifest into a stable `VerifyReport`.

States: "trusted" (valid and chains to a given anchor), "valid-untrusted" (intact, signer unknown),
"invalid" (tampered, expired, bad signature...), "no-manifest". Exit codes: 0 trusted, 1 otherwise;
unusable input (missing file, unsupported or unparseable container) raises ProvenanceError (exit 2).
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Union

import c2pa
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from .c2pa_sign import SIGN_LABEL, SIGNABLE, SWAP_LABEL
from .errors import ProvenanceError
from .revocation import find_revoked, load_revocations

REPORT_VERSION = 1
AI_SOURCE_TYPES = ("trainedAlgorithmicMedia", "compositeWithTrainedAlgorithmicMedia",
                   "algorithmicMedia", "compositeSynthetic", "trainedAlgorithmicData")

# c2pa validation codes in plain words (codes not listed fall back to the library's explanation)
CODE_WORDS = {
    "assertion.bmffHash.mismatch": "the video/audio bytes changed after signing (BMFF hash mismatch)",
    "assertion.dataHash.mismatch": "the file's bytes changed after signing (data hash mismatch)",
    "assertion.boxesHash.mismatch": "the file's bytes changed after signing (box hash mismatch)",
    "assertion.hashedURI.mismatch": "a manifest assertion was altered after signing",
    "assertion.missing": "an assertion the claim lists is missing",
    "assertion.action.ingredientMismatch": "an action refers to an ingredient that is not there",
    "claimSignature.mismatch": "the claim signature does not match the claim (manifest altered or forged)",
    "claimSignature.missing": "the manifest has no claim signature",
    "claimSignature.outsideValidity": "the file was signed outside the certificate's validity period",
    "signingCredential.untrusted": "the signer's certificate does not chain to a trust anchor you gave",
    "signingCredential.expired": "the signing certificate has expired",
    "signingCredential.revoked": "the signing certificate was revoked",
    "signingCredential.invalid": "the signing certificate is not valid for C2PA signing",
    "timeStamp.mismatch": "the timestamp does not match the signature",
    "timeStamp.untrusted": "the timestamp authority is not trusted",
    "timeStamp.outsideValidity": "the timestamp is outside the certificate's validity period",
    "manifest.inaccessible": "the manifest could not be read",
    "general.error": "the manifest could not be validated",
}
TRUST_CODES = ("signingCredential.untrusted",)


@dataclass
class Finding:
    code: str
    words: str
    explanation: Optional[str] = None


@dataclass
class VerifyReport:
    path: str
    state: str                                   # trusted | valid-untrusted | invalid | no-manifest
    c2pa_state: Optional[str] = None             # the library's own word: Trusted / Valid / Invalid
    manifest_label: Optional[str] = None
    title: Optional[str] = None
    claim_generator: Optional[str] = None
    signer: Optional[str] = None                 # certificate common name
    issuer: Optional[str] = None
    algorithm: Optional[str] = None
    cert_serial: Optional[str] = None
    signed_at: Optional[str] = None
    time_source: Optional[str] = None            # "tsa" (attested) | "claimed" (signer's clock) | None
    ai_generated: bool = False
    digital_source_types: List[str] = field(default_factory=list)  # over the whole history
    actions: List[Dict[str, Any]] = field(default_factory=list)
    ingredients: List[Dict[str, Any]] = field(default_factory=list)
    swap: Optional[Dict[str, Any]] = None        # the org.veriswap.swap assertion, if any
    failures: List[Finding] = field(default_factory=list)
    manifests: int = 0
    trust_anchors: int = 0
    report_version: int = REPORT_VERSION

    @property
    def exit_code(self) -> int:
        return 0 if self.state == "trusted" else 1

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)

    def to_json(self, indent: Optional[int] = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, sort_keys=True)


def _load_anchor(a: Union[str, Path, bytes]) -> str:
    """Anchor given as PEM bytes/text or as a path to a PEM file; checked to hold certificates."""
    if isinstance(a, bytes) or (isinstance(a, str) and "-----BEGIN" in a):
        data = a if isinstance(a, bytes) else a.encode()
        where = "trust anchor"
    else:
        where = str(a)
        try:
            data = Path(a).read_bytes()
        except (FileNotFoundError, IsADirectoryError):
            raise ProvenanceError(f"no trust anchor file: {a}") from None
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError:
        raise ProvenanceError(f"not a PEM certificate: {where}") from None
    return "".join(c.public_bytes(Encoding.PEM).decode() for c in certs)


def _context(anchors: List[str]) -> c2pa.Context:
    if not anchors:
        return c2pa.Context()
    return c2pa.Context.from_dict({"trust": {"trust_anchors": "".join(anchors)},
                                   "verify": {"verify_trust": True}})


def _finding(item: Dict[str, Any]) -> Finding:
    code = str(item.get("code", "unknown"))
    expl = item.get("explanation")
    return Finding(code, CODE_WORDS.get(code, expl or code), expl)


def _error_state(path: Path, e: c2pa.C2paError) -> Optional[VerifyReport]:
    msg = (str(e) or type(e).__name__).strip().splitlines()[0]
    if isinstance(e, c2pa.C2paError.ManifestNotFound):
        return VerifyReport(str(path), "no-manifest")
    if isinstance(e, (c2pa.C2paError.NotSupported, c2pa.C2paError.Io)) or "could not be parsed" in msg:
        raise ProvenanceError(f"cannot read {path.name} as a C2PA-capable file: {msg}") from None
    # a manifest is there but cannot even be decoded: tampered (or forged) manifest data
    return VerifyReport(str(path), "invalid",
                        failures=[Finding("manifest.unreadable", f"the manifest is corrupt: {msg}", msg)])


def verify_file(path: Union[str, Path], trust_anchors: Iterable[Union[str, Path, bytes]] = (),
                revoked: Iterable[Union[str, Path]] = ()) -> VerifyReport:
    """Validate `path`'s C2PA manifest; `trust_anchors` are root certificates (PEM paths or text), `revoked`
    CRL or certificate files whose certificates no longer vouch for anything (provenance.revocation)."""
    path = Path(path)
    if not path.is_file():
        raise ProvenanceError(f"no such file: {path}")
    anchors = [_load_anchor(a) for a in trust_anchors]
    deny = load_revocations(revoked)
    fmt = SIGNABLE.get(path.suffix.lower())  # None lets c2pa detect the type from the bytes
    ctx = None
    try:
        ctx = _context(anchors)
        with open(path, "rb") as f, c2pa.Reader(fmt, f, context=ctx) as reader:
            store = json.loads(reader.json())
            state = reader.get_validation_state()
            results = reader.get_validation_results() or {}
    except c2pa.C2paError as e:
        report = _error_state(path, e)
        report.trust_anchors = len(anchors)
        return report
    finally:
        if ctx is not None:
            ctx.close()
    report = _report(path, store, state, results)
    report.trust_anchors = len(anchors)
    hit = find_revoked(report.issuer, report.cert_serial, deny)
    if hit is not None:
        report.failures.append(Finding("signingCredential.revoked",
                                       f"{CODE_WORDS['signingCredential.revoked']} (listed in {hit.source})"))
        report.state = "invalid"
    return report


def _assertions(m: Dict[str, Any]) -> Dict[str, Any]:
    return {a.get("label"): a.get("data") for a in m.get("assertions", []) or [] if isinstance(a, dict)}


def _actions(assertions: Dict[str, Any]) -> List[Dict[str, Any]]:
    out = []
    for key in ("c2pa.actions.v2", "c2pa.actions"):
        data = assertions.get(key)
        for a in (data.get("actions", []) if isinstance(data, dict) else []) or []:
            if isinstance(a, dict):
                out.append({k: a[k] for k in ("action", "digitalSourceType", "description", "softwareAgent")
                            if k in a})
    return out


def _report(path: Path, store: Dict[str, Any], state: Optional[str], results: Dict[str, Any]) -> VerifyReport:
    label = store.get("active_manifest")
    m = (store.get("manifests") or {}).get(label) or {}
    active = results.get("activeManifest") or {}
    failures = [_finding(x) for x in active.get("failure", [])]
    # a broken ingredient manifest is reported too: its own history no longer holds
    for delta in results.get("ingredientDeltas", []) or []:
        for x in (delta.get("validationDeltas") or {}).get("failure", []):
            f = _finding(x)
            f.words = f"ingredient {delta.get('ingredientAssertionURI', '?')}: {f.words}"
            failures.append(f)
    if state == "Trusted" and not failures:
        word = "trusted"
    elif state in ("Trusted", "Valid") and all(f.code in TRUST_CODES for f in failures):
        word = "valid-untrusted"
    else:
        word = "invalid"
    sig = m.get("signature_info") or {}
    assertions = _assertions(m)
    actions = _actions(assertions)
    # AI declarations anywhere in the history count: re-signing a swap must not launder it
    history = [_assertions(x) for x in (store.get("manifests") or {}).values() if isinstance(x, dict)]
    all_sources = {a["digitalSourceType"] for h in history for a in _actions(h) if "digitalSourceType" in a}
    swap = assertions.get(SWAP_LABEL) or next((h[SWAP_LABEL] for h in history if h.get(SWAP_LABEL)), None)
    sources = sorted(str(x) for x in all_sources)
    signed_at, time_source = sig.get("time"), "tsa" if sig.get("time") else None
    if not signed_at and isinstance(assertions.get(SIGN_LABEL), dict):
        signed_at, time_source = assertions[SIGN_LABEL].get("signed_at"), "claimed"
    gen = [g for g in (m.get("claim_generator_info") or []) if isinstance(g, dict)]
    generator = (f"{gen[0].get('name', '')}/{gen[0].get('version', '')}".strip("/") if gen else "") \
        or m.get("claim_generator")
    return VerifyReport(
        path=str(path), state=word, c2pa_state=state, manifest_label=label, title=m.get("title"),
        claim_generator=generator, signer=sig.get("common_name"), issuer=sig.get("issuer"),
        algorithm=sig.get("alg"), cert_serial=sig.get("cert_serial_number"),
        signed_at=signed_at, time_source=time_source,
        ai_generated=any(s.rsplit("/", 1)[-1] in AI_SOURCE_TYPES for s in sources),
        digital_source_types=sources, actions=actions,
        ingredients=[{"title": i.get("title"), "format": i.get("format"),
                      "relationship": i.get("relationship"), "has_manifest": bool(i.get("active_manifest"))}
                     for i in m.get("ingredients", []) or []],
        swap=swap, failures=failures, manifests=len(store.get("manifests") or {}),
    )
