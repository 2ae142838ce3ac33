"""The web app's security rules, in one place (tests/test_ui.py tests each):

- an access token (random, like Jupyter's) on every request: `?token=` in the URL, the `X-Veriswap-Token`
  header, or the cookie the first page sets (the cookie alone never authorises a change: POST/PUT/DELETE
  need the header or the query, so another site cannot make the browser act; SameSite=Strict as well);
- the Host header must name the address the server listens on (a DNS-rebinding page is refused);
- every path the app reads or writes is inside the work folder: relative, no `..`, no symlink anywhere on
  the way (refused, never followed), checked again after resolution;
- uploads: a plain file name (no folder part, no `..`; other odd characters replaced), written to a
  temp file opened with O_EXCL|O_NOFOLLOW and renamed into place, cut off at the size limit.
"""
from __future__ import annotations

import hmac
import os
import re
import secrets
import stat
import unicodedata
from pathlib import Path
from typing import Iterable, Optional, Tuple

TOKEN_HEADER = "x-veriswap-token"
UNSAFE_METHODS = ("POST", "PUT", "PATCH", "DELETE")
DEFAULT_MAX_UPLOAD = 2 * 1024 ** 3          # 2 GiB
HIDDEN = ".veriswap-ui"                     # the app's own records inside the work folder (jobs)


class Refused(Exception):
    """A request the rules refuse; `status` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


def new_token() -> str:
    return secrets.token_urlsafe(24)


def token_ok(given: Optional[str], token: str) -> bool:
    return bool(given) and hmac.compare_digest(given.encode(), token.encode())


def request_token(method: str, query: dict, headers: dict, cookies: dict, cookie_name: str) -> Tuple[Optional[str], str]:
    """(the token the request carries, where from: 'query' | 'header' | 'cookie' | ''). A cookie counts only
    for safe methods (GET/HEAD)."""
    if headers.get(TOKEN_HEADER):
        return headers[TOKEN_HEADER], "header"
    if query.get("token"):
        return query["token"], "query"
    if method.upper() not in UNSAFE_METHODS and cookies.get(cookie_name):
        return cookies[cookie_name], "cookie"
    return None, ""


def host_ok(host_header: Optional[str], allowed: Iterable[str]) -> bool:
    """The Host header's name is one of `allowed` (names, no port); '*' allows any."""
    allowed = set(allowed)
    if "*" in allowed:
        return True
    if not host_header:
        return False
    h = host_header.strip().lower()
    if h.startswith("["):                      # [::1]:8000
        name = h[1:h.find("]")] if "]" in h else h
    else:
        name = h.rsplit(":", 1)[0] if h.count(":") == 1 else h
    return name in allowed


_BAD_CHARS = re.compile(r"[^A-Za-z0-9._ ()+-]")


def safe_name(name: str, max_len: int = 120) -> str:
    """A plain file name from an uploaded file's name: refused if it names a folder or climbs out of one
    (`a/b`, `..\\x`, `..`), else odd characters replaced by '_' and leading dots removed."""
    if not isinstance(name, str) or not name.strip():
        raise Refused("no file name given")
    if "\x00" in name or "/" in name or "\\" in name:
        raise Refused(f"refused: a file name must not contain a folder ({name!r})")
    if name.strip() in (".", "..") or name.startswith(".."):
        raise Refused(f"refused: {name!r} is not a plain file name")
    n = unicodedata.normalize("NFKC", name).strip()
    n = _BAD_CHARS.sub("_", n).lstrip(".").strip()
    if not n or n.strip("_") == "":
        raise Refused(f"refused: {name!r} has no usable characters")
    stem, dot, ext = n.rpartition(".")
    if dot and len(n) > max_len:
        n = stem[:max_len - len(ext) - 1] + "." + ext
    return n[:max_len]


class Workdir:
    """The one folder the app may read and write. Paths are given relative to it ('' is the folder itself)."""

    def __init__(self, root: Path):
        root = Path(root).expanduser()
        root.mkdir(parents=True, exist_ok=True)
        self.root = Path(os.path.realpath(root))
        (self.root / HIDDEN).mkdir(exist_ok=True)

    def rel(self, path: Path) -> str:
        return Path(os.path.relpath(path, self.root)).as_posix()

    def resolve(self, rel: str, must_exist: bool = False, allow_hidden: bool = False) -> Path:
        """The absolute path of `rel` inside the work folder; Refused (403) for absolute paths, `..`, a symlink
        anywhere on the way, or the app's own hidden records (unless `allow_hidden`)."""
        if rel is None:
            raise Refused("no path given")
        rel = str(rel).replace("\\", "/")
        if "\x00" in rel:
            raise Refused("refused: bad path", 403)
        if rel.startswith("/") or re.match(r"^[A-Za-z]:", rel):
            raise Refused(f"refused: {rel!r} is outside the work folder (absolute path)", 403)
        parts = [p for p in rel.split("/") if p not in ("", ".")]
        if any(p == ".." for p in parts):
            raise Refused(f"refused: {rel!r} climbs out of the work folder", 403)
        if parts and parts[0] == HIDDEN and not allow_hidden:
            raise Refused(f"refused: {rel!r} is the app's own records", 403)
        cur = self.root
        for p in parts:
            cur = cur / p
            try:
                st = os.lstat(cur)
            except FileNotFoundError:
                if must_exist:
                    raise Refused(f"not found: {rel}", 404) from None
                break
            if stat.S_ISLNK(st.st_mode):
                raise Refused(f"refused: {rel!r} goes through a symbolic link", 403)
        full = self.root.joinpath(*parts)
        real = Path(os.path.realpath(full))
        if real != self.root and self.root not in real.parents:
            raise Refused(f"refused: {rel!r} is outside the work folder", 403)
        if must_exist and not full.exists():
            raise Refused(f"not found: {rel}", 404)
        return full

    def folder(self, rel: str) -> Path:
        """A folder inside the work folder, made if missing (each level checked as in `resolve`)."""
        p = self.resolve(rel)
        if p.exists() and not p.is_dir():
            raise Refused(f"not a folder: {rel}")
        p.mkdir(parents=True, exist_ok=True)
        return self.resolve(rel, must_exist=True)

    def unique(self, folder: Path, name: str) -> Path:
        stem, dot, ext = name.rpartition(".")
        if not dot:
            stem, ext = name, ""
        cand, k = folder / name, 1
        while os.path.lexists(cand):
            cand = folder / (f"{stem} ({k}).{ext}" if ext else f"{stem} ({k})")
            k += 1
        return cand


class UploadWriter:
    """Streams one upload into FOLDER/NAME: a temp file opened O_EXCL|O_NOFOLLOW, the size limit enforced as
    bytes arrive (Refused 413, temp file removed), then renamed to a name not yet taken."""

    def __init__(self, wd: Workdir, folder_rel: str, name: str, max_bytes: int):
        self.wd, self.max = wd, max_bytes
        self.name = safe_name(name)
        self.folder = wd.folder(folder_rel)
        self.tmp = self.folder / f".upload-{secrets.token_hex(6)}.part"
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
        self.fd = os.open(self.tmp, flags, 0o644)
        self.size = 0

    def write(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.max:
            self.abort()
            raise Refused(f"refused: the upload is larger than the limit ({self.max:,} bytes)", 413)
        os.write(self.fd, chunk)

    def abort(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
        try:
            os.unlink(self.tmp)
        except FileNotFoundError:
            pass

    def finish(self) -> Path:
        os.fsync(self.fd)
        os.close(self.fd)
        self.fd = None
        if self.size == 0:
            os.unlink(self.tmp)
            raise Refused("refused: the upload is empty")
        dest = self.wd.unique(self.folder, self.name)
        try:
            os.link(self.tmp, dest)          # fails if the name was taken meanwhile (never replaces a symlink)
            os.unlink(self.tmp)
        except OSError:                      # a file system without hard links
            if os.path.lexists(dest):
                os.unlink(self.tmp)
                raise Refused(f"refused: {dest.name} appeared while uploading", 409) from None
            os.rename(self.tmp, dest)
        return dest
