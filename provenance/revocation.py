"""Revoked signing certificates for `verify`: a leaked or abused key must stop verifying as trusted long
before its certificate expires (Nikon suspended its camera signing service after an exploit, and every
verifier then needed to know). Offline, as the rest of veriswap: the lists are files you give.

Accepted, in any mix:
- X.509 CRLs as a CA publishes them (PEM or DER): each entry revokes (CRL issuer name, serial number);
- PEM certificates: revoke exactly these certificates (by SHA-256 fingerprint, and by issuer + serial);
- deny lists: text, one `sha256:<64 hex>` certificate fingerprint a line (`#` comments, blank lines).

A certificate is matched on itself, never on names alone: its issuer's full distinguished name and its
serial number (what X.509 guarantees to be unique), or the SHA-256 of its DER encoding. The certificate
comes from the manifest's own chain (the COSE `x5chain` c2pa-rs validated). A subject or organisation
name that happens to equal a CRL issuer matches nothing.
A CRL's own signature is not checked: a forged list can only make files fail, never pass.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, List, Optional, Union

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from .errors import ProvenanceError

_PEM_CRL = re.compile(rb"-----BEGIN X509 CRL-----.+?-----END X509 CRL-----", re.S)
_FPR = re.compile(r"^(?:sha256:)?([0-9a-fA-F]{64})$")


@dataclass(frozen=True)
class CertId:
    """One certificate, as revocation matches it."""

    issuer: Optional[x509.Name]      # the certificate's issuer DN (None: unknown)
    serial: Optional[int]
    fingerprint: Optional[str]       # SHA-256 of the DER certificate, lowercase hex (None: unknown)
    # when only a summary of the certificate is known (no DER): its issuer's attributes, e.g. ("O", "Acme")
    issuer_attrs: Optional[frozenset] = None

    @classmethod
    def of(cls, cert: x509.Certificate) -> "CertId":
        return cls(cert.issuer, cert.serial_number,
                   hashlib.sha256(cert.public_bytes(Encoding.DER)).hexdigest())


@dataclass(frozen=True)
class Revoked:
    issuer: Optional[x509.Name]      # with `serial`: the CRL's issuer / the certificate's issuer
    serial: Optional[int]
    fingerprint: Optional[str]       # a deny-listed or listed certificate's SHA-256
    source: str                      # the file that lists it

    def matches(self, c: CertId) -> bool:
        if self.fingerprint and c.fingerprint and self.fingerprint == c.fingerprint:
            return True
        if self.serial is None or c.serial is None or self.serial != c.serial or self.issuer is None:
            return False
        if c.issuer is not None:
            return self.issuer == c.issuer
        return bool(c.issuer_attrs) and c.issuer_attrs == _attrs(self.issuer)


def _attrs(name: x509.Name) -> frozenset:
    """A DN as a set of (short name, value), e.g. ("CN", "Intermediate CA"): for summaries without order."""
    return frozenset((a.rfc4514_attribute_name, str(a.value)) for a in name)


def _from_crl(crl: x509.CertificateRevocationList, source: str) -> List[Revoked]:
    return [Revoked(crl.issuer, r.serial_number, None, source) for r in crl]


def _deny_list(text: str, source: str) -> Optional[List[Revoked]]:
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        m = _FPR.match(line)
        if m is None:
            if n == 1 or not out:
                return None  # not a deny list at all
            raise ProvenanceError(f"{source} line {n}: expected sha256:<64 hex digits>, got {line[:40]!r}")
        out.append(Revoked(None, None, m.group(1).lower(), source))
    return out


def load_revocations(paths: Iterable[Union[str, Path]]) -> List[Revoked]:
    """Every revoked certificate listed in these CRL / certificate / deny-list files; ProvenanceError for
    a file that is none of them."""
    out: List[Revoked] = []
    for p in map(Path, paths):
        try:
            data = p.read_bytes()
        except (FileNotFoundError, IsADirectoryError):
            raise ProvenanceError(f"no revocation list file: {p}") from None
        try:
            if b"-----BEGIN X509 CRL-----" in data:
                for block in _PEM_CRL.findall(data):
                    out += _from_crl(x509.load_pem_x509_crl(block), str(p))
            elif b"-----BEGIN CERTIFICATE-----" in data:
                for c in x509.load_pem_x509_certificates(data):
                    cid = CertId.of(c)
                    out.append(Revoked(cid.issuer, cid.serial, cid.fingerprint, str(p)))
            else:
                try:
                    listed = _deny_list(data.decode("ascii"), str(p))
                except UnicodeDecodeError:
                    listed = None
                out += listed if listed is not None else _from_crl(x509.load_der_x509_crl(data), str(p))
        except ValueError:
            raise ProvenanceError(f"not a CRL, PEM certificate or sha256 deny list: {p}") from None
    return out


def find_revoked(cert: Optional[CertId], revoked: Iterable[Revoked]) -> Optional[Revoked]:
    """The entry that revokes `cert` (issuer DN + serial, or fingerprint), if any."""
    if cert is None:
        return None
    return next((r for r in revoked if r.matches(cert)), None)
