"""Test selection: `slow` tests run only with VERISWAP_SLOW=1 (`make test-all`) or `-m slow`;
`cuda` tests run only where torch sees a CUDA device. Both are skipped with a reason, never silently."""
from __future__ import annotations

import os
import shutil
import tempfile

import pytest

_HOME = {}


def pytest_configure(config):
    # Tests never read or write the user's ~/.veriswap (identity, manifest store, check config):
    # every run gets its own home, inherited by the CLI subprocesses the tests start.
    _HOME["dir"] = tempfile.mkdtemp(prefix="veriswap-test-home-")
    os.environ["VERISWAP_HOME"] = _HOME["dir"]


def pytest_unconfigure(config):
    if "dir" in _HOME:
        shutil.rmtree(_HOME.pop("dir"), ignore_errors=True)


def _cuda() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def pytest_collection_modifyitems(config, items):
    slow_on = os.environ.get("VERISWAP_SLOW") == "1" or "slow" in (config.getoption("-m") or "")
    has_cuda = None
    for item in items:
        if "slow" in item.keywords and not slow_on:
            item.add_marker(pytest.mark.skip(reason="slow: set VERISWAP_SLOW=1 (make test-all) to run"))
        if "cuda" in item.keywords:
            if has_cuda is None:
                has_cuda = _cuda()
            if not has_cuda:
                item.add_marker(pytest.mark.skip(reason="needs a CUDA device"))
