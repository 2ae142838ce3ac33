"""What `veriswap check` is told: trust anchors and lists, revocations, the tag key, the detector, and
whether remote manifests may be fetched. From the command line, else from a TOML config file
(`--config FILE`, default `$VERISWAP_HOME/check.toml`, `~/.veriswap/check.toml`):

    trust_anchors = ["newsroom-root.pem"]     # PEM root certificates (paths relative to the config file)
    trust_lists   = ["c2pa-trust-list.pem"]   # PEM bundles of anchors (a C2PA trust list)
    revoked       = ["revoked.crl"]           # CRL or certificate files
    tag_key       = "camera-tag.key"          # key for footage tags (HMAC secret or Ed25519 public key)
    detector      = "detectors/sbi-b4"        # detector folder used when --detector is not given
    allow_remote  = false                     # never fetch a manifest a file points to (the default)
    store         = "manifests"               # manifest store the watermark resolves against
                                              # (default $VERISWAP_HOME/manifests, where convert keeps them)

Command-line values add to (lists) or replace (single values) the config file's.
"""
from __future__ import annotations

import hashlib
import json
import os
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

from provenance.errors import ProvenanceError

CONFIG_NAME = "check.toml"
KEYS = ("trust_anchors", "trust_lists", "revoked", "tag_key", "detector", "allow_remote", "store")


class CheckInputError(ProvenanceError):
    """Bad usage or a setting that cannot be used (exit 2)."""


@dataclass
class CheckOptions:
    trust_anchors: List[str] = field(default_factory=list)
    trust_lists: List[str] = field(default_factory=list)
    revoked: List[str] = field(default_factory=list)
    tags: Optional[str] = None          # one tag file for a single input (else each file's .tags sidecar)
    tag_key: Optional[str] = None
    detector: Optional[str] = None
    frames: int = 32                    # frames the detector samples per video
    device: str = "cpu"
    allow_remote: bool = False
    media: bool = False                 # gather thumbnails, heatmaps and the manifest tree (HTML report)
    heatmaps: int = 3                   # top frames shown with Grad-CAM in the HTML report
    store: Optional[str] = None         # manifest store for the watermark (None: $VERISWAP_HOME/manifests)
    config_file: Optional[str] = None

    def fingerprint(self) -> str:
        """What decides a file's result besides the file: a resumed batch only reuses results made with
        the same options (and the same bytes in the anchor/key/detector files)."""
        d = asdict(self)
        d.pop("config_file", None)
        d.pop("tags", None)

        def digest(p: Optional[str]) -> Optional[str]:
            if not p:
                return None
            q = Path(p)
            if q.is_dir():
                parts = [(f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in sorted(q.iterdir()) if f.is_file()]
                return hashlib.sha256(repr(parts).encode()).hexdigest()[:16]
            try:
                return hashlib.sha256(q.read_bytes()).hexdigest()[:16]
            except OSError:
                return None
        for k in ("trust_anchors", "trust_lists", "revoked"):
            d[k] = [digest(p) for p in d[k]]
        d["tag_key"] = digest(self.tag_key)
        d["detector"] = digest(self.detector)
        if d.get("store") is None:      # the default store moves with $VERISWAP_HOME
            from provenance.store import default_store_dir
            d["store"] = str(default_store_dir())
        st = Path(d["store"])           # a record added to the store can change a result: hash its listing
        listing = sorted((str(f.relative_to(st)), f.stat().st_size, f.stat().st_mtime_ns)
                         for f in st.rglob("*") if f.is_file()) if st.is_dir() else []
        d["store"] = [d["store"], hashlib.sha256(repr(listing).encode()).hexdigest()[:16]]
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


def default_config_path() -> Path:
    home = os.environ.get("VERISWAP_HOME") or str(Path.home() / ".veriswap")
    return Path(home) / CONFIG_NAME


def load_config(path: Optional[Path]) -> Dict[str, Any]:
    """The config file's settings, paths made absolute against its folder; {} when the default file
    does not exist (a named one must)."""
    named = path is not None
    path = Path(path) if named else default_config_path()
    if not path.is_file():
        if named:
            raise CheckInputError(f"no such config file: {path}")
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise CheckInputError(f"config file {path} is not valid TOML: {e}") from None
    unknown = sorted(set(data) - set(KEYS))
    if unknown:
        raise CheckInputError(f"config file {path}: unknown setting(s) {', '.join(unknown)}; "
                              f"known: {', '.join(KEYS)}")
    base = path.parent

    def rel(v: Any, key: str) -> str:
        if not isinstance(v, str) or not v:
            raise CheckInputError(f"config file {path}: {key} must be a path (text)")
        return str((base / os.path.expanduser(v)).resolve())
    out: Dict[str, Any] = {"config_file": str(path)}
    for k in ("trust_anchors", "trust_lists", "revoked"):
        if k in data:
            v = data[k]
            v = [v] if isinstance(v, str) else v
            if not isinstance(v, list):
                raise CheckInputError(f"config file {path}: {k} must be a list of paths")
            out[k] = [rel(x, k) for x in v]
    for k in ("tag_key", "detector", "store"):
        if k in data:
            out[k] = rel(data[k], k)
    if "allow_remote" in data:
        if not isinstance(data["allow_remote"], bool):
            raise CheckInputError(f"config file {path}: allow_remote must be true or false")
        out["allow_remote"] = data["allow_remote"]
    return out


def make_options(config: Optional[Path] = None, **cli: Any) -> CheckOptions:
    """Config file settings overlaid with command-line ones (lists add up, single values replace)."""
    cfg = load_config(config)
    opts = CheckOptions(config_file=cfg.get("config_file"))
    for k in ("trust_anchors", "trust_lists", "revoked"):
        setattr(opts, k, list(cfg.get(k, [])) + [str(x) for x in (cli.pop(k, None) or [])])
    for k in ("tag_key", "detector", "store"):
        v = cli.pop(k, None)
        setattr(opts, k, str(v) if v else cfg.get(k))
    if cli.pop("no_detector", False):
        opts.detector = None
    opts.allow_remote = bool(cli.pop("allow_remote", False) or cfg.get("allow_remote", False))
    for k, v in cli.items():
        if v is not None:
            setattr(opts, k, str(v) if isinstance(v, Path) else v)
    for k in ("trust_anchors", "trust_lists", "revoked"):
        for p in getattr(opts, k):
            if not Path(p).is_file():
                raise CheckInputError(f"no such {k[:-1].replace('_', ' ')} file: {p}")
    if opts.tag_key and not Path(opts.tag_key).is_file():
        raise CheckInputError(f"no such tag key file: {opts.tag_key}")
    if opts.tags and not Path(opts.tags).is_file():
        raise CheckInputError(f"no such tag file: {opts.tags}")
    if opts.detector and not Path(opts.detector).is_dir():
        raise CheckInputError(f"no such detector folder: {opts.detector}")
    if opts.store and Path(opts.store).exists() and not Path(opts.store).is_dir():
        raise CheckInputError(f"--store is not a folder: {opts.store}")
    if opts.frames < 1:
        raise CheckInputError("--frames must be at least 1")
    return opts
