"""Revoked signing certificates for `verify`: a leaked or abused key must stop verifying as trusted long
before its certificate expires (Nikon suspended its camera signing service after an exploit, and every
verifier then needed to know). Offline, as the rest of veriswap: the lists are files you give.

Accepted: X.509 CRLs as a CA publishes them (PEM or DER), and PEM certificates (revoke exactly these).
A C2PA manifest names its signer by issuer organisation and serial number, so that is what is matched.
A CRL's own signature is not checked: a forged list can only make files fail, never pass.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, List, Optional, Union

from cryptography import x509
from cryptography.x509.oid import NameOID

from .errors import ProvenanceError

_PEM_CRL = re.compile(rb"-----BEGIN X509 CRL-----.+?-----END X509 CRL-----", re.S)


@dataclass(frozen=True)
class Revoked:
    issuer: Optional[str]           # the issuer's organisation (None: not stated, serial alone decides)
    serial: int
    source: str                     # the file that lists it


def _org(name: x509.Name) -> Optional[str]:
    attrs = name.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    return str(attrs[0].value) if attrs else None


def _from_crl(crl: x509.CertificateRevocationList, source: str) -> List[Revoked]:
    return [Revoked(_org(crl.issuer), r.serial_number, source) for r in crl]


def load_revocations(paths: Iterable[Union[str, Path]]) -> List[Revoked]:
    """Every revoked certificate listed in these CRL / certificate files; ProvenanceError for a file that
    is neither."""
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
                out += [Revoked(_org(c.issuer), c.serial_number, str(p)) for c in x509.load_pem_x509_certificates(data)]
            else:
                out += _from_crl(x509.load_der_x509_crl(data), str(p))
        except ValueError:
            raise ProvenanceError(f"not a CRL or PEM certificate: {p}") from None
    return out


def find_revoked(issuer: Optional[str], serial: Optional[str], revoked: Iterable[Revoked]) -> Optional[Revoked]:
    """The entry that revokes a signer named by C2PA's signature info (issuer organisation, decimal serial)."""
    if not serial:
        return None
    try:
        number = int(serial)
    except ValueError:
        return None
    return next((r for r in revoked if r.serial == number
                 and (r.issuer is None or issuer is None or r.issuer == issuer)), None)
