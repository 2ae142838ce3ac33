"""What the Trainer is built from: precision, the paired forward DDP wraps, warp-to-landmarks partners,
RNG state as text, the signal handler (stop / save now) and the divergence/out-of-memory errors."""
from __future__ import annotations

import base64
import signal
import threading
from typing import Any, Dict, Optional

import numpy as np
import torch

from ..device import cpu_fast_bf16
from ..errors import InputError


def nearest_shapes(mine: torch.Tensor, theirs: torch.Tensor, k: int = 10, chunk: int = 2048) -> torch.Tensor:
    """N,min(k, M) indices of the faces in `theirs` whose 68 landmarks are closest to each face in `mine`
    (in chunks: 20k x 20k faces would otherwise be a 1.6 GB distance matrix)."""
    flat = theirs.reshape(len(theirs), -1)
    k = min(k, len(theirs))
    return torch.cat([torch.cdist(m.reshape(len(m), -1), flat).topk(k, largest=False).indices
                      for m in mine.split(chunk)])


class Diverged(InputError):
    """The loss or the weights went NaN/inf: training stops without saving them over the last good checkpoint."""


def _is_oom(e: BaseException) -> bool:
    return isinstance(e, torch.OutOfMemoryError) or (
        isinstance(e, RuntimeError) and ("out of memory" in str(e) or "can't allocate memory" in str(e)))


def resolve_precision(name: str, device: torch.device) -> Optional[torch.dtype]:
    if name not in ("auto", "fp32", "bf16", "fp16"):
        raise InputError(f"unknown precision {name!r}: use auto, fp32, bf16 or fp16")
    if device.type != "cuda":
        if name == "fp16":
            raise InputError("--precision fp16 needs CUDA; use bf16 (or auto) on the CPU")
        return torch.bfloat16 if name == "bf16" or (name == "auto" and cpu_fast_bf16()) else None
    if name == "fp32":
        return None
    if name == "bf16" or (name == "auto" and torch.cuda.is_bf16_supported()):
        return torch.bfloat16
    return torch.float16


class _Pair(torch.nn.Module):
    """One forward for both identities (one encoder pass over A+B) so DDP sees every parameter once."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, xa: torch.Tensor, xb: torch.Tensor):
        z = self.model.encode(torch.cat([xa, xb], 0))
        za, zb = z[: xa.shape[0]], z[xa.shape[0]:]
        fa, ma = self.model.decode(za, "a")
        fb, mb = self.model.decode(zb, "b")
        return fa, ma, fb, mb


def _rng_b64(t: torch.Tensor) -> str:
    return base64.b64encode(t.cpu().numpy().tobytes()).decode()


def _rng_from_b64(s: str) -> torch.Tensor:
    return torch.from_numpy(np.frombuffer(base64.b64decode(s), np.uint8).copy())


class _StopFlag:
    """SIGINT/SIGTERM: finish the step, save, stop. SIGUSR1: save and preview now, then go on (the
    'save now' of faceswap's GUI, for a job running in the background: `kill -USR1 PID`)."""

    def __init__(self):
        self.reason: Optional[str] = None
        self.save_now = False
        self._old: Dict[int, Any] = {}

    def install(self):
        if threading.current_thread() is not threading.main_thread():
            return
        sigs = [signal.SIGINT, signal.SIGTERM] + ([signal.SIGUSR1] if hasattr(signal, "SIGUSR1") else [])
        for sig in sigs:
            self._old[sig] = signal.getsignal(sig)
            signal.signal(sig, self._handle)

    def _handle(self, signum, frame):
        if signum == getattr(signal, "SIGUSR1", None):
            self.save_now = True
            return
        if self.reason is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt  # second Ctrl-C: stop now
        self.reason = signal.Signals(signum).name

    def restore(self):
        for sig, h in self._old.items():
            signal.signal(sig, h)
