"""The records of a C2PA check: `VerifyReport` (stable, versioned: SCHEMA_VERSION), its `Finding`s,
`Certificate` and `CawgIdentity`, and the words for c2pa's codes and IPTC source types. Split out of
c2pa_verify, which re-exports every name.
"""
from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any, Dict, List, Optional

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


_ATOMS = (str, int, float, bool, type(None))
_FIELDS: Dict[type, tuple] = {}


def _plain(v: Any) -> Any:
    """dataclasses.asdict's result (dataclasses, lists, tuples and dicts copied, anything else deep-copied),
    without its generic deep copy of every string and number."""
    if isinstance(v, _ATOMS):
        return v
    if isinstance(v, list):
        return [_plain(x) for x in v]
    if isinstance(v, dict):
        return type(v)((_plain(k), _plain(x)) for k, x in v.items())
    if is_dataclass(v) and not isinstance(v, type):
        names = _FIELDS.get(type(v))
        if names is None:
            names = _FIELDS[type(v)] = tuple(f.name for f in fields(v))
        return {n: _plain(getattr(v, n)) for n in names}
    if isinstance(v, tuple):
        items = [_plain(x) for x in v]
        return type(v)(*items) if hasattr(v, "_fields") else type(v)(items)
    return copy.deepcopy(v)


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
        return _plain(self)

    def to_json(self, indent: Optional[int] = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, sort_keys=True)
