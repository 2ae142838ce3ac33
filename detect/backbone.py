"""Detector backbones the timm way: pretrained weights through timm's own loading path.

Three ways to start a detector, recorded in a `BackboneSource` (the model card names it):

- `pretrained=True` (the default): `timm.create_model(name, pretrained=True, num_classes=1)`. timm fetches
  the weights from the Hugging Face hub (`timm/<name>.<tag>`) into the hub cache and loads them from there;
  with `HF_HUB_OFFLINE=1`, or whenever the file is already cached, nothing is contacted. With no cache and
  no network: one `InputError` line naming both ways out (`--weights FILE`, or connect once so timm caches
  it), never a 45 s retry loop and a traceback.
- `weights=FILE` (a .safetensors, or a .pth/.pt/.bin torch file of the backbone):
  `timm.create_model(name, pretrained=True, pretrained_cfg_overlay=dict(file=FILE), num_classes=1)`, so timm
  does the loading, the classifier-head resizing (a 1000-class ImageNet head is dropped for our one logit),
  input-channel adaptation and the input config (mean/std/size stay the architecture's). timm reads torch
  files with `torch.load(weights_only=True)` (checked below against the installed timm: a user's file is
  never unpickled as code); safetensors files hold no code at all.
- `pretrained=False`: random init, said so in the source ("none") and hence in the model card.

timm loads a file non-strictly once the head is dropped, so a file of another architecture whose names do
not match would load *nothing* silently; the keys timm reports missing are checked here instead and such a
file is refused.
"""
from __future__ import annotations

import hashlib
import inspect
import logging
import os
import re
import socket
import warnings
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator, List, Optional, Tuple
from urllib.parse import urlparse

from swap.errors import InputError

WEIGHT_SUFFIXES = (".safetensors", ".pth", ".pt", ".bin")
_HUB_FILES = ("model.safetensors", "pytorch_model.bin")
_MAX_MISSING = 0.05      # share of the backbone's tensors (head excluded) a weights file may lack


@dataclass
class BackboneSource:
    """Where a detector's starting weights came from."""

    arch: str
    kind: str                        # "hub" | "file" | "none"
    location: Optional[str] = None   # "timm/resnet10t.c3_in1k" (hub) or the file's absolute path
    sha256: Optional[str] = None     # of the weights file (kind "file", or the cached hub file)
    tensors_loaded: Optional[int] = None
    tensors_total: Optional[int] = None

    @property
    def pretrained(self) -> bool:
        return self.kind != "none"

    def describe(self) -> str:
        if self.kind == "hub":
            return f"{self.arch}, ImageNet-pretrained weights from the Hugging Face hub ({self.location}, via timm)"
        if self.kind == "file":
            return f"{self.arch}, pretrained weights from a local file ({Path(self.location or '').name}, sha256 {str(self.sha256)[:12]})"
        return f"{self.arch}, random init (trained from scratch, no pretrained weights)"

    def to_dict(self) -> dict:
        d = asdict(self)
        d["pretrained"] = self.pretrained
        d["description"] = self.describe()
        return d

    @classmethod
    def from_dict(cls, d: Optional[dict]) -> Optional["BackboneSource"]:
        if not isinstance(d, dict) or "arch" not in d or "kind" not in d:
            return None
        return cls(**{k: d.get(k) for k in cls.__dataclass_fields__})


def check_arch(arch: str) -> None:
    import timm

    if not timm.is_model(arch):
        close = timm.list_models(f"*{arch.split('.')[0].split('_')[0]}*")[:5]
        hint = f" (similar: {', '.join(close)})" if close else ""
        raise InputError(f"unknown timm architecture {arch!r}{hint}")


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _timm_reads_torch_files_safely() -> bool:
    """True when the installed timm loads non-safetensors files with torch.load(weights_only=True)."""
    try:
        from timm.models import _helpers

        return inspect.signature(_helpers.load_state_dict).parameters["weights_only"].default is True
    except (ImportError, KeyError, AttributeError, ValueError):
        return False


def hub_cache_dir() -> Optional[str]:
    """The Hugging Face hub cache as the environment names it *now* (huggingface_hub reads it at import)."""
    if os.environ.get("HF_HUB_CACHE"):
        return os.environ["HF_HUB_CACHE"]
    if os.environ.get("HF_HOME"):
        return os.path.join(os.environ["HF_HOME"], "hub")
    return None


def _offline_env() -> bool:
    v = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or ""
    if v.strip().upper() in ("1", "ON", "YES", "TRUE"):
        return True
    try:
        from huggingface_hub import constants

        return bool(constants.HF_HUB_OFFLINE)
    except ImportError:  # pragma: no cover
        return False


@contextmanager
def _hub_offline(on: bool) -> Iterator[None]:
    """Force huggingface_hub's offline mode for one call (it reads HF_HUB_OFFLINE at import time)."""
    from huggingface_hub import constants

    old = constants.HF_HUB_OFFLINE
    constants.HF_HUB_OFFLINE = bool(on) or old
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE = old


def hub_weights(arch: str) -> Tuple[Optional[str], List[str]]:
    """(hub repo id, candidate file names) of timm's default pretrained weights for `arch`."""
    from timm.models import get_pretrained_cfg

    try:
        cfg = get_pretrained_cfg(arch)
    except RuntimeError as e:
        raise InputError(f"timm architecture {arch!r}: {e}") from None
    if cfg is None or not cfg.hf_hub_id:
        return None, []
    names = [cfg.hf_hub_filename] if cfg.hf_hub_filename else list(_HUB_FILES)
    if names[0].endswith(".bin"):
        names = [names[0][:-4] + ".safetensors", "model.safetensors"] + names
    return cfg.hf_hub_id.split("@")[0], list(dict.fromkeys(names))


def cached_hub_file(repo: str, names: List[str], cache_dir: Optional[str]) -> Optional[str]:
    from huggingface_hub import try_to_load_from_cache

    for n in names:
        p = try_to_load_from_cache(repo, n, cache_dir=cache_dir)
        if isinstance(p, str) and os.path.isfile(p):
            return p
    return None


def hub_reachable(timeout: float = 3.0) -> bool:
    """A quick TCP connect to the hub endpoint (huggingface_hub itself retries for ~45 s when offline)."""
    url = os.environ.get("HF_ENDPOINT") or "https://huggingface.co"
    u = urlparse(url)
    host, port = u.hostname or "huggingface.co", u.port or (443 if u.scheme != "http" else 80)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


class _MissingKeys(logging.Handler):
    """Collects the keys timm reports missing after a pretrained load (timm logs them, loads non-strictly)."""

    pattern = re.compile(r"Missing keys \((.*)\) discovered", re.S)

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.missing: List[str] = []
        self.seen = False

    def emit(self, record: logging.LogRecord) -> None:
        m = self.pattern.search(record.getMessage())
        if m:
            self.seen = True
            self.missing += [k.strip() for k in m.group(1).split(",") if k.strip()]


@contextmanager
def _watch_missing() -> Iterator[_MissingKeys]:
    log = logging.getLogger("timm.models._builder")
    h, old = _MissingKeys(), log.level
    log.addHandler(h)
    if log.getEffectiveLevel() > logging.INFO:
        log.setLevel(logging.INFO)
    try:
        yield h
    finally:
        log.removeHandler(h)
        log.setLevel(old)


def _head_keys(model) -> List[str]:
    cls = model.pretrained_cfg.get("classifier") or ()
    cls = (cls,) if isinstance(cls, str) else tuple(cls)
    return [k for k in model.state_dict() if any(k == c + ".weight" or k == c + ".bias" for c in cls)]


def _check_coverage(model, watch: _MissingKeys, what: str) -> Tuple[int, int]:
    keys = list(model.state_dict())
    head = set(_head_keys(model))
    body = [k for k in keys if k not in head]
    missing = [k for k in watch.missing if k not in head and k in set(body)]
    if body and len(missing) > _MAX_MISSING * len(body):
        raise InputError(f"{what} does not fit architecture {model.pretrained_cfg.get('architecture')}: "
                         f"{len(missing)} of its {len(body)} backbone tensors are missing from the file")
    return len(body) - len(missing), len(body)


def _one_line(e: BaseException) -> str:
    s = " ".join(str(e).split())
    return f"{type(e).__name__}: {s[:200]}" if s else type(e).__name__


def create_backbone(arch: str, pretrained: bool = True, weights: Optional[str | Path] = None,
                    num_classes: int = 1, cache_dir: Optional[str] = None,
                    probe_timeout: float = 3.0) -> Tuple[object, BackboneSource]:
    """A timm classifier with `num_classes` outputs and where its weights came from (see module doc)."""
    import timm

    check_arch(arch)
    if weights is not None:
        return _from_file(arch, Path(weights), num_classes)
    if not pretrained:
        return timm.create_model(arch, pretrained=False, num_classes=num_classes), BackboneSource(arch, "none")

    repo, names = hub_weights(arch)
    if repo is None:
        raise InputError(f"timm has no pretrained weights for {arch!r}: pass --weights FILE (a .safetensors of "
                         f"the backbone) or --no-pretrained to train from scratch")
    cache_dir = cache_dir or hub_cache_dir()
    cached = cached_hub_file(repo, names, cache_dir)
    offline = _offline_env()
    way_out = (f"pass --weights FILE (a .safetensors/.pth of {arch}), or connect to the internet once so timm "
               f"caches {repo} (then it works offline), or --no-pretrained to train from scratch")
    if cached is None and offline:
        raise InputError(f"no pretrained {arch} weights: HF_HUB_OFFLINE is set and {repo} is not in the hub cache "
                         f"({cache_dir or 'default cache'}); {way_out}")
    if cached is None and not hub_reachable(probe_timeout):
        raise InputError(f"no pretrained {arch} weights: the Hugging Face hub is unreachable and {repo} is not in "
                         f"the hub cache ({cache_dir or 'default cache'}); {way_out}")
    try:
        # a cached file is loaded without contacting the hub (no HEAD request that could hang offline)
        with _hub_offline(cached is not None), _watch_missing() as watch:
            model = timm.create_model(arch, pretrained=True, num_classes=num_classes, cache_dir=cache_dir)
    except InputError:
        raise
    except Exception as e:  # noqa: BLE001 - any hub/IO failure becomes the one-line message
        raise InputError(f"no pretrained {arch} weights: loading {repo} failed ({_one_line(e)}); {way_out}") from None
    loaded, total = _check_coverage(model, watch, f"the hub weights {repo}")
    path = cached or cached_hub_file(repo, names, cache_dir)
    return model, BackboneSource(arch, "hub", repo, file_sha256(Path(path)) if path else None, loaded, total)


def _from_file(arch: str, path: Path, num_classes: int) -> Tuple[object, BackboneSource]:
    import timm

    if not path.is_file():
        raise InputError(f"no such weights file: {path}")
    if path.suffix.lower() not in WEIGHT_SUFFIXES:
        raise InputError(f"weights file {path.name}: expected one of {', '.join(WEIGHT_SUFFIXES)} "
                         f"(safetensors preferred)")
    torch_file = path.suffix.lower() != ".safetensors"
    if torch_file and not _timm_reads_torch_files_safely():  # pragma: no cover - depends on timm version
        raise InputError(f"weights file {path.name}: this timm version would not read torch files with "
                         f"weights_only=True; convert it to .safetensors first")
    try:
        # torch's weights_only unpickler warns about a pickle protocol it was not written with before it refuses
        # the file: the refusal below is the one line a user sees (issue 16)
        with _watch_missing() as watch, warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r"Detected pickle protocol", category=UserWarning)
            model = timm.create_model(arch, pretrained=True, num_classes=num_classes,
                                      pretrained_cfg_overlay=dict(file=str(path.resolve())))
    except Exception as e:  # noqa: BLE001 - a file timm cannot use is a bad input
        name = type(e).__name__
        if "Unpickl" in name or "weights_only" in str(e) or "Weights only load failed" in str(e):
            raise InputError(f"weights file {path.name} refused: it is not a plain tensor file (torch.load "
                             f"weights_only=True rejected it); use .safetensors") from None
        if isinstance(e, RuntimeError) and ("size mismatch" in str(e) or "state_dict" in str(e)):
            raise InputError(f"weights file {path.name} does not fit architecture {arch} "
                             f"({_one_line(e)[:160]})") from None
        raise InputError(f"cannot load weights file {path.name} ({_one_line(e)})") from None
    loaded, total = _check_coverage(model, watch, f"weights file {path.name}")
    return model, BackboneSource(arch, "file", str(path.resolve()), file_sha256(path), loaded, total)
