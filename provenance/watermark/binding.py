"""Watermark + manifest together: pick the manifest label first, derive the payload from it, embed, sign
with a `c2pa.soft-binding` assertion naming the payload, and keep the manifest in the store."""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from cryptography.hazmat.primitives import serialization

from ..c2pa_sign import SIGN_LABEL, SignResult, SwapFacts, sign_file
from ..keys import Identity
from ..store import ManifestStore, Record
from .assertion import soft_binding
from .core import format_id, payload_id


@dataclass
class Binding:
    """The manifest label chosen before signing and the watermark payload id derived from it."""

    label: str
    pid: int

    @property
    def payload(self) -> str:
        return format_id(self.pid)


def signer_key_bytes(identity: Identity) -> bytes:
    return identity.certificate.public_key().public_bytes(serialization.Encoding.DER,
                                                          serialization.PublicFormat.SubjectPublicKeyInfo)


def new_binding(identity: Identity) -> Binding:
    label = f"urn:c2pa:{uuid.uuid4()}"
    return Binding(label, payload_id(label, signer_key_bytes(identity)))


def sign_watermarked(src: Path, out: Path, identity: Identity, binding: Binding,
                     facts: Optional[SwapFacts] = None, source: Optional[Path] = None,
                     duration_ms: Optional[int] = None, store: Optional[ManifestStore] = None) -> SignResult:
    """Sign a file whose pixels carry `binding`'s watermark and keep its manifest in `store`
    (default: the local store under $VERISWAP_HOME)."""
    sb = soft_binding(binding.pid, duration_ms)
    res = sign_file(src, out, identity, facts=facts, source=source, label=binding.label, assertions=[sb])
    signed = next((a["data"] for a in res.definition["assertions"] if a.get("label") == SIGN_LABEL), {})
    model = None
    if facts is not None:
        model = facts.model_hash + (f" ({facts.model_name})" if facts.model_name else "")
    rec = Record(payload_id=binding.payload, manifest_label=res.manifest_label or binding.label,
                 signer=identity.subject, signed_at=signed.get("signed_at"), title=Path(res.out).name,
                 source=Path(facts.source).name if facts is not None and facts.source else
                 (Path(source).name if source is not None else None),
                 model=model, soft_binding=sb["data"])
    (store or ManifestStore()).add_signed_file(res.out, rec)
    return res
