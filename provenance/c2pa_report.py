"""Build a `VerifyReport` from what c2pa's Reader returned (its JSON store, validation state and results,
crJSON) and what c2pa_store reads from the file itself (the claim signature's chain, bytes no signature
covers). Split out of c2pa_verify, which re-exports these names.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple, Union

from cryptography import x509
from cryptography.x509.oid import NameOID

from .c2pa_records import (AI_KINDS, CAWG_PREFIX, CODE_WORDS, TRAINED, CawgIdentity, Certificate, Finding,
                           VerifyReport, _tolerated)
from .c2pa_sign import SIGN_LABEL, SWAP_LABEL
from .c2pa_store import ClaimSignature, FileScan, cert_fingerprint, claim_signature
from .revocation import CertId


def _attr(name: x509.Name, oid) -> Optional[str]:
    a = name.get_attributes_for_oid(oid)
    return str(a[0].value) if a else None


def _certificate(sig: Optional[ClaimSignature], cr_manifest: Union[Dict[str, Any], Callable[[], Dict[str, Any]]],
                 c2pa_serial: Optional[str]) -> Tuple[Optional[Certificate], Optional[CertId]]:
    """The signing certificate from the manifest's x5chain; c2pa's crJSON summary (`cr_manifest`, or a
    function that gives it, called only then) when it cannot be read."""
    if sig is not None and sig.chain:
        cert = sig.chain[0]
        # the chain must be the one c2pa validated: same serial as c2pa's signature info
        if c2pa_serial is None or str(cert.serial_number) == str(c2pa_serial):
            fingerprint = cert_fingerprint(cert)
            return Certificate(
                subject=cert.subject.rfc4514_string(), common_name=_attr(cert.subject, NameOID.COMMON_NAME),
                organization=_attr(cert.subject, NameOID.ORGANIZATION_NAME),
                issuer=cert.issuer.rfc4514_string(),
                issuer_organization=_attr(cert.issuer, NameOID.ORGANIZATION_NAME),
                serial=str(cert.serial_number), serial_hex=format(cert.serial_number, "x"),
                fingerprint_sha256=fingerprint,
                not_before=cert.not_valid_before_utc.isoformat(), not_after=cert.not_valid_after_utc.isoformat(),
                chain_length=len(sig.chain), source="manifest"), \
                CertId(cert.issuer, cert.serial_number, fingerprint)       # (CertId.of, hashed once)
    if callable(cr_manifest):
        cr_manifest = cr_manifest()
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


def _failures(m: Dict[str, Any], active: Dict[str, List[Dict[str, Any]]],
              results: Dict[str, Any]) -> Tuple[List[Finding], List[Dict[str, Any]]]:
    """Failures, each once: the active manifest's, then each ingredient's (cawg.* go to their own line);
    and each ingredient's codes by class."""
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
    return failures, ingredient_status


def _state_and_trust(state: Optional[str], active: Dict[str, List[Dict[str, Any]]],
                     failures: List[Finding]) -> Tuple[str, str]:
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
    return word, trust


def _history(manifests: Dict[str, Any], assertions: Dict[str, Any]) -> Tuple[List[str], str, Any]:
    """AI declarations anywhere in the history count: re-signing a swap must not launder it. The file's
    own (active manifest's) trained-model declaration names what the file is, though: a Photoshop edit
    that composites a Firefly picture is compositeWithTrainedAlgorithmicMedia, not the ingredient's
    trainedAlgorithmicMedia. Where the active manifest declares no trained kind, the history's most
    significant declaration stands."""
    history = [_assertions(x) for x in manifests.values() if isinstance(x, dict)]
    sources = sorted({a["digitalSourceType"] for h in history for a in _actions(h)
                      if isinstance(a.get("digitalSourceType"), str)})
    swap = assertions.get(SWAP_LABEL) or next((h[SWAP_LABEL] for h in history if h.get(SWAP_LABEL)), None)
    own = ai_declaration(a["digitalSourceType"] for a in _actions(assertions)
                         if isinstance(a.get("digitalSourceType"), str))
    return sources, own if own in TRAINED else ai_declaration(sources), swap


def _ingredients(m: Dict[str, Any], ingredient_status: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    ingredients = []
    for i in m.get("ingredients", []) or []:
        if not isinstance(i, dict):
            continue
        st = next((s for s in ingredient_status if s["uri"].endswith("/" + str(i.get("label")))), None)
        ingredients.append({"title": i.get("title"), "format": i.get("format"),
                            "relationship": i.get("relationship"), "has_manifest": bool(i.get("active_manifest")),
                            "failures": st["failure"] if st else []})
    return ingredients


def _report(path: Path, store: Dict[str, Any], state: Optional[str], results: Dict[str, Any],
            crjson: Union[Dict[str, Any], Callable[[], Dict[str, Any]]], scan: FileScan
            ) -> Tuple[VerifyReport, Optional[CertId]]:
    """`crjson`: c2pa's crJSON, or a function that reads it from the open Reader: it is needed only where
    the manifest's own certificate chain cannot be read (c2pa_verify passes a function: most files never
    pay for a second serialisation of the store)."""
    label = store.get("active_manifest")
    manifests = store.get("manifests") or {}
    m = manifests.get(label) or {}
    active = _codes(results.get("activeManifest"))
    sig = m.get("signature_info") or {}
    assertions = _assertions(m)

    failures, ingredient_status = _failures(m, active, results)
    word, trust = _state_and_trust(state, active, failures)
    sources, kind, swap = _history(manifests, assertions)
    signed_at, time_source = sig.get("time"), "tsa" if sig.get("time") else None
    signing = assertions.get(SIGN_LABEL) if isinstance(assertions.get(SIGN_LABEL), dict) else {}
    if not signed_at and signing:
        signed_at, time_source = signing.get("signed_at"), "claimed"
    gen = [g for g in (m.get("claim_generator_info") or []) if isinstance(g, dict)]
    generator = (f"{gen[0].get('name', '')}/{gen[0].get('version', '')}".strip("/") if gen else "") \
        or m.get("claim_generator")

    def cr_manifest() -> Dict[str, Any]:
        doc = crjson() if callable(crjson) else crjson
        return next((x for x in doc.get("manifests", []) or [] if isinstance(x, dict)
                     and x.get("label") == label), {})
    claim_sig = claim_signature(scan.store, label) if scan.store else None
    try:
        cert, cid = _certificate(claim_sig, cr_manifest, sig.get("cert_serial_number"))
    except (ValueError, TypeError, AttributeError):   # a certificate c2pa read but we cannot describe
        cert, cid = None, None

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
        digital_source_types=sources, actions=_actions(assertions), ingredients=_ingredients(m, ingredient_status),
        swap=swap, cawg_identity=_cawg(assertions, active),
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
