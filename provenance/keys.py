"""Local signing identity: an Ed25519 root CA and an Ed25519 end-entity certificate that c2pa-rs accepts.

Layout of an identity folder (all PEM):
    root.pem    root CA certificate: the trust anchor you hand to verifiers
    root.key    root CA private key (PKCS#8, 0600; only needed to issue a new signing cert)
    signer.pem  end-entity certificate chain: signing cert first, then any intermediates
    signer.key  end-entity private key (PKCS#8, 0600)
    tag.key     HMAC-SHA256 secret for footage tags (32 random bytes as hex, 0600)
With a passphrase, all three secrets are encrypted: root.key and signer.key as PKCS#8
(BestAvailableEncryption), tag.key as a "VERISWAP ENCRYPTED TAG KEY" PEM block (scrypt + AES-256-GCM,
see `encrypt_tag_secret`). Certificates are public and never encrypted.
A user may put their own signer.pem/signer.key (Ed25519, chain to their own root) in a folder instead.
The same Ed25519 signer key can sign footage tags (`tags`, mode ed25519); tag.key is the HMAC secret.
"""
from __future__ import annotations

import base64
import datetime as dt
import json
import os
import secrets
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from .errors import KeyFileError
from .fsutil import atomic_write_bytes

TAG_KEY_PEM = b"VERISWAP ENCRYPTED TAG KEY"
_TAG_BEGIN, _TAG_END = b"-----BEGIN " + TAG_KEY_PEM + b"-----", b"-----END " + TAG_KEY_PEM + b"-----"
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2 ** 15, 8, 1      # ~32 MiB, ~0.1 s: interactive use, as OpenSSL's default
_SCRYPT_N_MAX = 2 ** 17                           # a hostile file cannot ask for more memory than 128 MiB


def _tag_kek(passphrase: bytes, salt: bytes, n: int, r: int, p: int) -> bytes:
    from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

    return Scrypt(salt=salt, length=32, n=n, r=r, p=p).derive(passphrase)


def encrypt_tag_secret(text: bytes, passphrase: bytes) -> bytes:
    """tag.key's content (the hex secret line) encrypted with `passphrase`: scrypt -> AES-256-GCM, the PEM
    label as associated data, in a PEM block whose body is base64 of JSON
    {"v":1,"kdf":"scrypt","n","r","p","salt","aead":"aes-256-gcm","nonce","ct"} (hex values)."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    salt, nonce = secrets.token_bytes(16), secrets.token_bytes(12)
    ct = AESGCM(_tag_kek(passphrase, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)).encrypt(nonce, text, TAG_KEY_PEM)
    body = json.dumps({"v": 1, "kdf": "scrypt", "n": SCRYPT_N, "r": SCRYPT_R, "p": SCRYPT_P, "salt": salt.hex(),
                       "aead": "aes-256-gcm", "nonce": nonce.hex(), "ct": ct.hex()}, separators=(",", ":"))
    b64 = base64.b64encode(body.encode())
    lines = [b64[i:i + 64] for i in range(0, len(b64), 64)]
    return b"\n".join([_TAG_BEGIN, *lines, _TAG_END]) + b"\n"


def is_encrypted_tag_key(data: bytes) -> bool:
    return _TAG_BEGIN in data[:200]


def decrypt_tag_secret(data: bytes, passphrase: Optional[bytes], path: Path) -> bytes:
    """The plaintext of an encrypted tag.key; KeyFileError (exit 2) for a missing or wrong passphrase or a
    damaged file."""
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    if not passphrase:
        raise KeyFileError(f"{path} is encrypted; give its passphrase (--passphrase-env VAR)")
    try:
        start, end = data.index(_TAG_BEGIN) + len(_TAG_BEGIN), data.index(_TAG_END)
        d = json.loads(base64.b64decode(b"".join(data[start:end].split()), validate=True))
        n, r, p = int(d["n"]), int(d["r"]), int(d["p"])
        if d.get("v") != 1 or d.get("kdf") != "scrypt" or d.get("aead") != "aes-256-gcm" \
                or not (2 <= n <= _SCRYPT_N_MAX and n & (n - 1) == 0 and 1 <= r <= 16 and 1 <= p <= 4):
            raise ValueError("unsupported parameters")
        salt, nonce, ct = (bytes.fromhex(d[k]) for k in ("salt", "nonce", "ct"))
    except (ValueError, KeyError, TypeError):
        raise KeyFileError(f"{path}: damaged encrypted tag key") from None
    try:
        return AESGCM(_tag_kek(passphrase, salt, n, r, p)).decrypt(nonce, ct, TAG_KEY_PEM)
    except (InvalidTag, ValueError):
        raise KeyFileError(f"cannot decrypt {path}: wrong passphrase or damaged file") from None

ROOT_CERT, ROOT_KEY, SIGNER_CERT, SIGNER_KEY = "root.pem", "root.key", "signer.pem", "signer.key"
TAG_KEY = "tag.key"  # HMAC-SHA256 secret for footage tags: 32 random bytes, hex
DEFAULT_DAYS = 3650
SIGNER_DAYS = 825  # end-entity certs are shorter-lived than the root, as in public PKI


@dataclass
class Identity:
    """A loaded signing identity. `chain_pem` is what goes into the C2PA signature (no root)."""

    key_dir: Path
    private_key: ed25519.Ed25519PrivateKey
    chain_pem: bytes
    certificate: x509.Certificate
    root_pem: Optional[bytes]  # the trust anchor, when the folder has one

    algorithm = "ed25519"

    @property
    def subject(self) -> str:
        return self.certificate.subject.rfc4514_string()

    def sign(self, data: bytes) -> bytes:
        return self.private_key.sign(data)


def _name(common_name: str, org: str) -> x509.Name:
    return x509.Name([
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
    ])


def _pem_key(key: ed25519.Ed25519PrivateKey, passphrase: Optional[bytes]) -> bytes:
    enc = (serialization.BestAvailableEncryption(passphrase) if passphrase
           else serialization.NoEncryption())
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, enc)


def make_certificates(name: str = "veriswap local", days: int = DEFAULT_DAYS,
                      signer_lifetime: Optional[dt.timedelta] = None):
    """Return (root_key, root_cert, signer_key, signer_cert); `signer_lifetime` overrides the signing
    certificate's validity (tests use seconds to get an expired certificate)."""
    now = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=5)  # tolerate small clock skew
    signer_until = now + (signer_lifetime if signer_lifetime is not None
                          else dt.timedelta(days=min(days, SIGNER_DAYS)))
    root_key = ed25519.Ed25519PrivateKey.generate()
    root_name = _name(f"{name} root CA", name)
    root_ski = x509.SubjectKeyIdentifier.from_public_key(root_key.public_key())
    root_cert = (
        x509.CertificateBuilder()
        .subject_name(root_name).issuer_name(root_name)
        .public_key(root_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now).not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=False, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
            encipher_only=False, decipher_only=False), critical=True)
        .add_extension(root_ski, critical=False)
        .sign(root_key, algorithm=None)  # Ed25519 takes no separate hash
    )
    signer_key = ed25519.Ed25519PrivateKey.generate()
    signer_cert = (
        x509.CertificateBuilder()
        .subject_name(_name(f"{name} signer", name)).issuer_name(root_name)
        .public_key(signer_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now).not_valid_after(signer_until)
        # c2pa-rs rejects signing certs without these: CA:false, digitalSignature, a C2PA-allowed EKU
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
            encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(signer_key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(root_ski),
                       critical=False)
        .sign(root_key, algorithm=None)
    )
    return root_key, root_cert, signer_key, signer_cert


def generate_identity(out_dir: Path, name: str = "veriswap local", passphrase: Optional[bytes] = None,
                      days: int = DEFAULT_DAYS, overwrite: bool = False) -> Identity:
    """Create a root CA + end-entity signing identity in `out_dir` (keys 0600, atomic writes)."""
    out_dir = Path(out_dir)
    if not name.strip() or len(name) > 56:  # X.509 caps CN at 64 chars and we append " root CA"
        raise KeyFileError("identity name must be 1 to 56 characters")
    if days < 1:
        raise KeyFileError("certificate validity must be at least 1 day")
    existing = [f for f in (ROOT_KEY, SIGNER_KEY, TAG_KEY) if (out_dir / f).exists()]
    if existing and not overwrite:
        raise KeyFileError(f"{out_dir} already holds a key ({existing[0]}); refusing to overwrite it")
    root_key, root_cert, signer_key, signer_cert = make_certificates(name, days)
    if not out_dir.exists():  # a folder we create is private; an existing one keeps its mode
        out_dir.mkdir(parents=True)
        os.chmod(out_dir, 0o700)
    pem = serialization.Encoding.PEM
    atomic_write_bytes(out_dir / ROOT_KEY, _pem_key(root_key, passphrase), mode=0o600)
    atomic_write_bytes(out_dir / SIGNER_KEY, _pem_key(signer_key, passphrase), mode=0o600)
    tag_secret = secrets.token_hex(32).encode() + b"\n"
    atomic_write_bytes(out_dir / TAG_KEY, encrypt_tag_secret(tag_secret, passphrase) if passphrase else tag_secret,
                       mode=0o600)
    atomic_write_bytes(out_dir / ROOT_CERT, root_cert.public_bytes(pem), mode=0o644)
    atomic_write_bytes(out_dir / SIGNER_CERT, signer_cert.public_bytes(pem), mode=0o644)
    return load_identity(out_dir, passphrase)


def load_private_key(path: Path, passphrase: Optional[bytes] = None):
    """Load a PEM private key; clear errors for a missing file, a wrong or missing passphrase."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise KeyFileError(f"no key file: {path}") from None
    except IsADirectoryError:
        raise KeyFileError(f"expected a key file, got a folder: {path}") from None
    try:
        return serialization.load_pem_private_key(data, password=passphrase or None)
    except TypeError:
        if passphrase:
            raise KeyFileError(f"{path} is not encrypted; do not pass a passphrase") from None
        raise KeyFileError(f"{path} is encrypted; give its passphrase (--passphrase-env VAR)") from None
    except ValueError:
        if passphrase:
            raise KeyFileError(f"cannot decrypt {path}: wrong passphrase or not a PEM key") from None
        raise KeyFileError(f"not a PEM private key: {path}") from None
    except Exception as e:  # cryptography raises UnsupportedAlgorithm for odd key types
        raise KeyFileError(f"cannot load key {path}: {type(e).__name__}") from None


def load_certificates(path: Path) -> List[x509.Certificate]:
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise KeyFileError(f"no certificate file: {path}") from None
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError:
        raise KeyFileError(f"not a PEM certificate file: {path}") from None
    return certs


ENCRYPTED_FILES = (ROOT_KEY, SIGNER_KEY, TAG_KEY)   # what keygen encrypts when given a passphrase


def key_is_encrypted(path: Path) -> bool:
    """An encrypted PKCS#8 private key or an encrypted tag.key."""
    try:
        head = Path(path).read_bytes()[:200]
    except OSError:
        return False
    return b"ENCRYPTED PRIVATE KEY" in head or is_encrypted_tag_key(head)


def load_identity(key_dir: Path, passphrase: Optional[bytes] = None) -> Identity:
    """Load signer.key + signer.pem (+ root.pem if present) from `key_dir`, checking they match."""
    key_dir = Path(key_dir)
    if not key_dir.is_dir():
        raise KeyFileError(f"no identity folder: {key_dir} (create one with `veriswap provenance keygen`)")
    key = load_private_key(key_dir / SIGNER_KEY, passphrase)
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise KeyFileError(f"{key_dir / SIGNER_KEY}: veriswap signs with Ed25519 keys only")
    certs = load_certificates(key_dir / SIGNER_CERT)
    raw = serialization.PublicFormat.SubjectPublicKeyInfo
    if certs[0].public_key().public_bytes(serialization.Encoding.DER, raw) != \
            key.public_key().public_bytes(serialization.Encoding.DER, raw):
        raise KeyFileError(f"{key_dir / SIGNER_CERT} does not belong to {key_dir / SIGNER_KEY}")
    root_path = key_dir / ROOT_CERT
    root_pem = root_path.read_bytes() if root_path.exists() else None
    # the root is the verifier's anchor, not part of the signature's chain
    root_fps = {c.fingerprint(hashes.SHA256()) for c in load_certificates(root_path)} if root_pem else set()
    chain = [c for c in certs if c.fingerprint(hashes.SHA256()) not in root_fps] or certs[:1]
    chain_pem = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in chain)
    return Identity(key_dir, key, chain_pem, certs[0], root_pem)


def veriswap_home() -> Path:
    return Path(os.environ.get("VERISWAP_HOME") or Path.home() / ".veriswap")


def default_identity_dir() -> Path:
    return veriswap_home() / "identity"


def default_identity(passphrase: Optional[bytes] = None) -> Identity:
    """The local identity at $VERISWAP_HOME/identity (default ~/.veriswap/identity), made on first use
    (unencrypted unless a passphrase is given) so `convert` can always sign."""
    d = default_identity_dir()
    if not (d / SIGNER_KEY).exists():
        # build it in a sibling temp folder and rename, so a concurrent first use never sees half an identity
        d.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".identity.", dir=d.parent))
        try:
            generate_identity(tmp, passphrase=passphrase)
            try:
                os.rename(tmp, d)
            except OSError:
                if not (d / SIGNER_KEY).exists():
                    raise  # not a lost race: a real problem with the location
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return load_identity(d, passphrase)
