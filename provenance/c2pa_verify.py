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

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Tuple, Union

import c2pa
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from .c2pa_sign import SIGN_LABEL, SWAP_LABEL
from .c2pa_store import ClaimSignature, FileScan, cert_fingerprint, claim_signature, scan_file
from .errors import ProvenanceError
from .revocation import CertId, find_revoked, load_revocations

SCHEMA_VERSION = 2
IPTC = "http://cv.iptc.org/newscodes/digitalsourcetype/"

# IPTC digital source types that declare AI or algorithmic making, most significant first, in words
AI_KINDS = {
    "trainedAlgorithmicMedia": "AI-generated (made by a trained model)",
    "compositeWithTrainedAlgorithmicMedia": "AI-composited (trained-model output combined with other media)",
    "trainedAlgorithmicData": "AI-generated data (made by a trained model)",
    "algorithmicMedia": "algorithmic, not AI-trained (made by an algorithm without training data)",
    "compositeSynthetic": "composite with synthetic elements",
    "algorithmicallyEnhanced": "algorithmically enhanced (not generated)",
}
TRAINED = ("trainedAlgorithmicMedia", "compositeWithTrainedAlgorithmicMedia", "trainedAlgorithmicData")

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
    "signingCredential.ocsp.revoked": "the signing certificate was revoked (OCSP)",
    "signingCredential.invalid": "the signing certificate is not valid for C2PA signing",
    "timeStamp.mismatch": "the timestamp does not match the signature",
    "timeStamp.untrusted": "the timestamp authority is not trusted",
    "timeStamp.outsideValidity": "the timestamp is outside the certificate's validity period",
    "manifest.inaccessible": "the manifest could not be read",
    "manifest.remote.notFetched": "the file points to a manifest stored elsewhere; not fetched",
    "general.error": "the manifest could not be validated",
    "ingredient.unknownProvenance": "an ingredient has no C2PA history",
    "assertion.bmffHash.additionalExclusionsPresent": "the video hash leaves out more boxes than C2PA requires",
    "assertion.dataHash.additionalExclusionsPresent": "the data hash leaves out more bytes than the manifest",
}
# failures that leave a manifest Valid in c2pa-rs (validation_results.rs: is_tolerated_manifest_failure_code)
TOLERATED = ("signingCredential.untrusted",)
TOLERATED_PREFIX = ("cawg.x509.",)
CAWG_PREFIX = ("cawg.",)


def _tolerated(code: str) -> bool:
    return code in TOLERATED or code.startswith(TOLERATED_PREFIX)


@dataclass
class Finding:
    code: str
    words: str
    explanation: Optional[str] = None
    where: str = "manifest"                        # "manifest" (the active one) or "ingredient <title>"


@dataclass
class Certificate:
    """The signing certificate, from the manifest's own chain (COSE x5chain) when it can be read."""

    subject: str                                   # RFC 4514, e.g. "CN=C2PA Signer,O=...,C=US"
    common_name: Optional[str]
    organization: Optional[str]                    # the SUBJECT's organisation (who signed)
    issuer: str                                    # RFC 4514 DN of the CA that issued it
    issuer_organization: Optional[str]
    serial: str                                    # decimal
    serial_hex: str
    fingerprint_sha256: Optional[str]              # None when only c2pa's summary was available
    not_before: Optional[str] = None
    not_after: Optional[str] = None
    chain_length: int = 0
    source: str = "manifest"                       # "manifest" (x5chain) | "c2pa" (crJSON certificateInfo)


@dataclass
class CawgIdentity:
    """A CAWG identity assertion: who (a named actor) vouches for this manifest, and its credential."""

    label: str
    sig_type: Optional[str]                        # cawg.x509.cose | cawg.identity_claims_aggregation ...
    actor: Optional[str]                           # the named actor
    organization: Optional[str]
    credential: str                                # trusted | untrusted | invalid | valid | unknown
    codes: List[str] = field(default_factory=list)


@dataclass
class VerifyReport:
    path: str
    state: str                                   # trusted | valid-untrusted | invalid | no-manifest
    c2pa_state: Optional[str] = None             # the library's own word: Trusted / Valid / Invalid
    manifest_label: Optional[str] = None
    title: Optional[str] = None
    claim_generator: Optional[str] = None
    signer: Optional[str] = None                 # the signing certificate's common name
    signer_subject: Optional[str] = None         # its subject DN
    issuer: Optional[str] = None                 # its ISSUER's DN (the CA), never the subject's org
    cert_serial: Optional[str] = None            # decimal
    cert_fingerprint: Optional[str] = None       # SHA-256 of the DER certificate
    certificate: Optional[Certificate] = None
    algorithm: Optional[str] = None
    signed_at: Optional[str] = None
    time_source: Optional[str] = None            # "tsa" (attested) | "claimed" (signer's clock) | None
    trust: str = "unknown"                       # trusted | untrusted | unknown: the active signer only
    ai_declaration: str = "none"                 # the most significant IPTC source type declared, or none
    ai_words: str = "not declared"
    ai_generated: bool = False                   # a trained model made or composited it
    digital_source_types: List[str] = field(default_factory=list)  # over the whole history
    actions: List[Dict[str, Any]] = field(default_factory=list)
    ingredients: List[Dict[str, Any]] = field(default_factory=list)
    swap: Optional[Dict[str, Any]] = None        # the org.veriswap.swap assertion, if any
    cawg_identity: List[CawgIdentity] = field(default_factory=list)
    status_codes: Dict[str, List[str]] = field(default_factory=dict)   # active manifest, by c2pa's class
    ingredient_status: List[Dict[str, Any]] = field(default_factory=list)
    failures: List[Finding] = field(default_factory=list)   # failure-class codes, each once (no cawg.*)
    warnings: List[str] = field(default_factory=list)       # bytes no signature covers that look altered
    manifests: int = 0
    trust_anchors: int = 0
    remote_manifest: Optional[str] = None        # URL the manifest was (or would have been) fetched from
    remote_fetch: bool = False                   # whether fetching was allowed for this check
    schema_version: int = SCHEMA_VERSION

    @property
    def exit_code(self) -> int:
        return 0 if self.state == "trusted" else 1

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)

    def to_json(self, indent: Optional[int] = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, sort_keys=True)


# ------------------------------------------------------------------------------------------ context

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


def readable_types() -> List[str]:
    """File extensions (lowercase, no dot) c2pa's Reader takes."""
    return sorted(t for t in c2pa.Reader.get_supported_mime_types() if "/" not in t)


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
    fmt = ext if ext in readable_types() else None  # None lets c2pa detect the type from the bytes
    ctx = None
    try:
        ctx = _context(anchors, allow_remote)
        with open(path, "rb") as f, c2pa.Reader(fmt, f, context=ctx) as reader:
            store = json.loads(reader.json())
            state = reader.get_validation_state()
            results = reader.get_validation_results() or {}
            try:
                crjson = json.loads(reader.crjson())
            except (c2pa.C2paError, ValueError):
                crjson = {}
            remote = None if reader.is_embedded() else reader.get_remote_url()
    except c2pa.C2paError as e:
        report = _error_state(path, e, allow_remote)
        report.trust_anchors = len(anchors)
        return report
    finally:
        if ctx is not None:
            ctx.close()
    try:
        scan = scan_file(path)
    except OSError:
        scan = FileScan(None, None)
    report, cid = _report(path, store, state, results, crjson, scan)
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


def _attr(name: x509.Name, oid) -> Optional[str]:
    a = name.get_attributes_for_oid(oid)
    return str(a[0].value) if a else None


def _certificate(sig: Optional[ClaimSignature], cr_manifest: Dict[str, Any],
                 c2pa_serial: Optional[str]) -> Tuple[Optional[Certificate], Optional[CertId]]:
    """The signing certificate from the manifest's x5chain; c2pa's crJSON summary when it cannot be read."""
    if sig is not None and sig.chain:
        cert = sig.chain[0]
        # the chain must be the one c2pa validated: same serial as c2pa's signature info
        if c2pa_serial is None or str(cert.serial_number) == str(c2pa_serial):
            return Certificate(
                subject=cert.subject.rfc4514_string(), common_name=_attr(cert.subject, NameOID.COMMON_NAME),
                organization=_attr(cert.subject, NameOID.ORGANIZATION_NAME),
                issuer=cert.issuer.rfc4514_string(),
                issuer_organization=_attr(cert.issuer, NameOID.ORGANIZATION_NAME),
                serial=str(cert.serial_number), serial_hex=format(cert.serial_number, "x"),
                fingerprint_sha256=cert_fingerprint(cert),
                not_before=cert.not_valid_before_utc.isoformat(), not_after=cert.not_valid_after_utc.isoformat(),
                chain_length=len(sig.chain), source="manifest"), CertId.of(cert)
    info = ((cr_manifest.get("signature") or {}).get("certificateInfo") or {})
    if not info.get("serialNumber"):
        return None, None

    def dn(d: Dict[str, Any]) -> str:
        # crJSON lists a name's attributes in certificate order; RFC 4514 writes them last first
        return ",".join(f"{k}={v}" for k, v in reversed(list(d.items())))
    subj, iss = info.get("subject") or {}, info.get("issuer") or {}
    try:
        serial = int(str(info["serialNumber"]), 16)
    except ValueError:
        return None, None
    validity = info.get("validity") or {}
    return Certificate(subject=dn(subj), common_name=subj.get("CN"), organization=subj.get("O"),
                       issuer=dn(iss), issuer_organization=iss.get("O"), serial=str(serial),
                       serial_hex=format(serial, "x"), fingerprint_sha256=None,
                       not_before=validity.get("notBefore"), not_after=validity.get("notAfter"),
                       source="c2pa"), \
        CertId(None, serial, None, issuer_attrs=frozenset((str(k), str(v)) for k, v in iss.items()))


def _assertions(m: Dict[str, Any]) -> Dict[str, Any]:
    return {a.get("label"): a.get("data") for a in m.get("assertions", []) or [] if isinstance(a, dict)}


def _actions(assertions: Dict[str, Any]) -> List[Dict[str, Any]]:
    out = []
    for key in ("c2pa.actions.v2", "c2pa.actions"):
        data = assertions.get(key)
        for a in (data.get("actions", []) if isinstance(data, dict) else []) or []:
            if isinstance(a, dict):
                d = {k: a[k] for k in ("action", "digitalSourceType", "description", "softwareAgent") if k in a}
                if isinstance(d.get("digitalSourceType"), str):
                    d["digitalSourceType"] = d["digitalSourceType"].strip()
                out.append(d)
    return out


def ai_declaration(source_types: Iterable[str]) -> str:
    """The most significant AI-related IPTC digital source type among these (short name), or 'none'."""
    names = {str(s).strip().rsplit("/", 1)[-1] for s in source_types}
    return next((k for k in AI_KINDS if k in names), "none")


def _codes(sc: Optional[Dict[str, Any]]) -> Dict[str, List[Dict[str, Any]]]:
    sc = sc or {}
    return {k: [x for x in (sc.get(k) or []) if isinstance(x, dict)] for k in ("success", "informational", "failure")}


def _finding(item: Dict[str, Any], where: str = "manifest") -> Finding:
    code = str(item.get("code", "unknown"))
    expl = item.get("explanation")
    return Finding(code, CODE_WORDS.get(code, expl or code), expl, where)


def _cawg(assertions: Dict[str, Any], active: Dict[str, List[Dict[str, Any]]]) -> List[CawgIdentity]:
    out = []
    for label, data in assertions.items():
        if not (isinstance(label, str) and label.startswith("cawg.identity") and isinstance(data, dict)):
            continue
        codes = [str(x.get("code")) for cls in ("success", "informational", "failure") for x in active[cls]
                 if str(x.get("url", "")).endswith("/" + label) and str(x.get("code", "")).startswith(CAWG_PREFIX)]
        payload = data.get("signer_payload") or {}
        info = data.get("signature_info") or {}
        actor, org = info.get("common_name"), info.get("issuer")  # c2pa's "issuer" here is the subject's O
        for vid in data.get("verifiedIdentities") or data.get("verified_identities") or []:
            if isinstance(vid, dict) and not actor:
                actor = vid.get("name") or vid.get("username")
                org = org or ((vid.get("provider") or {}).get("name") if isinstance(vid.get("provider"), dict) else None)
        if any(c.endswith(("credential.invalid", "signature.mismatch", "outside_validity", "algorithm.unsupported"))
               or c.endswith(".invalid") for c in codes):
            cred = "invalid"
        elif any(c.endswith("credential.untrusted") or c.endswith("untrusted_issuer") for c in codes):
            cred = "untrusted"
        elif any(c.endswith("credential.trusted") for c in codes):
            cred = "trusted"
        elif any(c.endswith(("signature.validated", "credential_valid", "well-formed")) for c in codes):
            cred = "valid"
        else:
            cred = "unknown"
        out.append(CawgIdentity(label, payload.get("sig_type"), actor, org, cred, codes))
    return out


def _report(path: Path, store: Dict[str, Any], state: Optional[str], results: Dict[str, Any],
            crjson: Dict[str, Any], scan: FileScan) -> Tuple[VerifyReport, Optional[CertId]]:
    label = store.get("active_manifest")
    manifests = store.get("manifests") or {}
    m = manifests.get(label) or {}
    active = _codes(results.get("activeManifest"))
    sig = m.get("signature_info") or {}
    assertions = _assertions(m)

    # failures, each once: the active manifest's, then each ingredient's (cawg.* go to their own line)
    failures: List[Finding] = []
    seen = set()

    def add(f: Finding) -> None:
        if f.code.startswith(CAWG_PREFIX) or (f.code, f.where) in seen:
            return
        seen.add((f.code, f.where))
        failures.append(f)

    for x in active["failure"]:
        add(_finding(x))
    by_label = {i.get("label"): i.get("title") for i in m.get("ingredients", []) or [] if isinstance(i, dict)}
    ingredient_status = []
    for delta in results.get("ingredientDeltas", []) or []:
        uri = str(delta.get("ingredientAssertionURI", "?"))
        title = by_label.get(uri.rsplit("/", 1)[-1]) or uri.rsplit("/", 1)[-1]
        dc = _codes(delta.get("validationDeltas"))
        ingredient_status.append({"ingredient": title, "uri": uri,
                                  **{k: [str(x.get("code")) for x in v] for k, v in dc.items()}})
        for x in dc["failure"]:
            add(_finding(x, f"ingredient {title}"))

    word = {"Trusted": "trusted", "Valid": "valid-untrusted", "Invalid": "invalid"}.get(str(state))
    if word is None:  # no state from c2pa: derive it as c2pa-rs does (validation_results.rs)
        codes_ok = all(_tolerated(f.code) for f in failures)
        ok = {"claimSignature.validated", "claimSignature.insideValidity"} <= {x.get("code") for x in active["success"]}
        word = "invalid" if not (ok and codes_ok) else (
            "trusted" if not failures and any(x.get("code") == "signingCredential.trusted" for x in active["success"])
            else "valid-untrusted")
    success = {x.get("code") for x in active["success"]}
    trust = "trusted" if "signingCredential.trusted" in success else (
        "untrusted" if any(x.get("code") == "signingCredential.untrusted" for x in active["failure"]) else "unknown")

    # AI declarations anywhere in the history count: re-signing a swap must not launder it
    history = [_assertions(x) for x in manifests.values() if isinstance(x, dict)]
    sources = sorted({a["digitalSourceType"] for h in history for a in _actions(h)
                      if isinstance(a.get("digitalSourceType"), str)})
    kind = ai_declaration(sources)
    swap = assertions.get(SWAP_LABEL) or next((h[SWAP_LABEL] for h in history if h.get(SWAP_LABEL)), None)
    signed_at, time_source = sig.get("time"), "tsa" if sig.get("time") else None
    signing = assertions.get(SIGN_LABEL) if isinstance(assertions.get(SIGN_LABEL), dict) else {}
    if not signed_at and signing:
        signed_at, time_source = signing.get("signed_at"), "claimed"
    gen = [g for g in (m.get("claim_generator_info") or []) if isinstance(g, dict)]
    generator = (f"{gen[0].get('name', '')}/{gen[0].get('version', '')}".strip("/") if gen else "") \
        or m.get("claim_generator")

    cr_manifest = next((x for x in crjson.get("manifests", []) or [] if isinstance(x, dict)
                        and x.get("label") == label), {})
    claim_sig = claim_signature(scan.store, label) if scan.store else None
    try:
        cert, cid = _certificate(claim_sig, cr_manifest, sig.get("cert_serial_number"))
    except (ValueError, TypeError, AttributeError):   # a certificate c2pa read but we cannot describe
        cert, cid = None, None

    ingredients = []
    for i in m.get("ingredients", []) or []:
        if not isinstance(i, dict):
            continue
        st = next((s for s in ingredient_status if s["uri"].endswith("/" + str(i.get("label")))), None)
        ingredients.append({"title": i.get("title"), "format": i.get("format"),
                            "relationship": i.get("relationship"), "has_manifest": bool(i.get("active_manifest")),
                            "failures": st["failure"] if st else []})

    report = VerifyReport(
        path=str(path), state=word, c2pa_state=state, manifest_label=label, title=m.get("title"),
        claim_generator=generator,
        signer=cert.common_name if cert else sig.get("common_name"),
        signer_subject=cert.subject if cert else None,
        issuer=cert.issuer if cert else None,
        cert_serial=cert.serial if cert else sig.get("cert_serial_number"),
        cert_fingerprint=cert.fingerprint_sha256 if cert else None, certificate=cert,
        algorithm=sig.get("alg"), signed_at=signed_at, time_source=time_source, trust=trust,
        ai_declaration=kind, ai_words=AI_KINDS.get(kind, "not declared"), ai_generated=kind in TRAINED,
        digital_source_types=sources, actions=_actions(assertions), ingredients=ingredients, swap=swap,
        cawg_identity=_cawg(assertions, active),
        status_codes={k: [str(x.get("code")) for x in v] for k, v in active.items()},
        ingredient_status=ingredient_status, failures=failures, manifests=len(manifests),
    )
    report.warnings = _warnings(scan, claim_sig, signing, active)
    return report, cid


def _warnings(scan: FileScan, claim_sig: Optional[ClaimSignature], signing: Dict[str, Any],
              active: Dict[str, List[Dict[str, Any]]]) -> List[str]:
    """Bytes a valid signature does not cover, when they look altered (see docs/provenance.md)."""
    out = []
    if claim_sig is not None and claim_sig.pad_nonzero:
        out.append(f"{claim_sig.pad_nonzero} non-zero bytes in the claim signature's padding "
                   f"({claim_sig.pad_bytes} bytes, not covered by any signature; c2pa-rs writes zeros)")
    b = scan.bmff
    if b is not None:
        try:
            signed_ftyp = bytes.fromhex(signing["ftyp"]) if isinstance(signing.get("ftyp"), str) else None
        except ValueError:
            signed_ftyp = None   # (an altered assertion: c2pa already reports its hash mismatch)
        if signed_ftyp and b.ftyp is not None and b.ftyp != signed_ftyp:
            out.append(f"the ftyp box changed since signing (brand {_brand(signed_ftyp)!r} -> "
                       f"{_brand(b.ftyp)!r}); C2PA's video hash does not cover ftyp")
        if b.free_nonzero:
            out.append(f"{b.free_nonzero} non-zero bytes in top-level free/skip boxes "
                       f"({b.free_bytes} bytes, not covered by the video hash)")
        if b.manifest_box_slack:
            out.append(f"{b.manifest_box_slack} bytes after the manifest store in its box (not covered)")
    # (c2pa-rs reports assertion.bmffHash.additionalExclusionsPresent for its own default list, which
    # leaves out /free and /skip too: informational, kept in status_codes, not a warning by itself)
    return out


def _brand(ftyp: bytes) -> str:
    return ftyp[8:12].decode("latin-1") if len(ftyp) >= 12 else "?"
