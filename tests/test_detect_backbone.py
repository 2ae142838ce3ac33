"""Pretrained detector backbones through timm's own path (detect/backbone.py): a local file through
`pretrained_cfg_overlay=dict(file=...)`, the hub cache offline, and the one-line error without either."""
from __future__ import annotations

import pickle
import time

import pytest

torch = pytest.importorskip("torch")
timm = pytest.importorskip("timm")
pytest.importorskip("huggingface_hub")

from detect.backbone import BackboneSource, create_backbone, hub_weights  # noqa: E402
from swap.errors import InputError  # noqa: E402

ARCH = "resnet10t"


def _imagenet_like(seed: int = 1):
    """A real timm backbone with ImageNet's 1000-class head and non-default weights."""
    torch.manual_seed(seed)
    m = timm.create_model(ARCH, pretrained=False, num_classes=1000)
    with torch.no_grad():
        for p in m.parameters():
            p.add_(torch.randn_like(p) * 0.01)
    return m


def _save_safetensors(m, path):
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in m.state_dict().items()}, str(path))
    return path


def _assert_backbone_equal(model, src):
    sd, ref = model.state_dict(), src.state_dict()
    body = [k for k in ref if not k.startswith("fc.")]
    assert body and all(torch.equal(sd[k], ref[k]) for k in body)
    assert tuple(sd["fc.weight"].shape) == (1, ref["fc.weight"].shape[1])   # head resized to one logit
    assert tuple(sd["fc.bias"].shape) == (1,)


@pytest.fixture
def no_hub(tmp_path, monkeypatch):
    """An empty hub/torch cache and an endpoint that refuses connections (deterministic 'no network')."""
    from huggingface_hub import constants

    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    return tmp_path


def test_weights_file_safetensors_through_timm_overlay(tmp_path):
    src = _imagenet_like()
    f = _save_safetensors(src, tmp_path / "backbone.safetensors")
    model, info = create_backbone(ARCH, weights=f)
    _assert_backbone_equal(model, src)
    assert info.kind == "file" and info.pretrained and len(info.sha256) == 64
    assert info.tensors_loaded == info.tensors_total > 50
    # timm kept the architecture's input config (mean/std/size) for the detector to use
    assert tuple(model.pretrained_cfg["mean"]) == pytest.approx((0.485, 0.456, 0.406))
    assert "local file" in info.describe()
    assert BackboneSource.from_dict(info.to_dict()) == info


def test_weights_file_pth_loaded_with_weights_only(tmp_path):
    src = _imagenet_like(2)
    f = tmp_path / "backbone.pth"
    torch.save({"state_dict": src.state_dict()}, f)       # nested like a training checkpoint
    model, info = create_backbone(ARCH, weights=f)
    _assert_backbone_equal(model, src)
    assert info.kind == "file"


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_pickled_code_in_a_weights_file_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    f = tmp_path / "evil.pth"
    with open(f, "wb") as fh:
        pickle.dump({"state_dict": {"fc.weight": _Evil(str(marker))}}, fh)
    torch.save({"conv": _Evil(str(marker))}, tmp_path / "evil2.pth")
    for p in (f, tmp_path / "evil2.pth"):
        with pytest.raises(InputError, match="not a plain tensor file"):
            create_backbone(ARCH, weights=p)
    assert not marker.exists()


def test_weights_of_another_architecture_refused(tmp_path):
    from safetensors.torch import save_file

    other = _save_safetensors(timm.create_model("resnet18", pretrained=False), tmp_path / "r18.safetensors")
    with pytest.raises(InputError, match="does not fit architecture resnet10t"):
        create_backbone(ARCH, weights=other)
    junk = tmp_path / "junk.safetensors"
    save_file({"a.weight": torch.zeros(3), "b.bias": torch.ones(2)}, str(junk))
    with pytest.raises(InputError, match="does not fit"):     # timm would load it non-strictly: nothing loaded
        create_backbone(ARCH, weights=junk)
    with pytest.raises(InputError, match="no such weights file"):
        create_backbone(ARCH, weights=tmp_path / "missing.safetensors")
    (tmp_path / "w.npz").write_bytes(b"x")
    with pytest.raises(InputError, match="safetensors preferred"):
        create_backbone(ARCH, weights=tmp_path / "w.npz")


def test_hub_unreachable_one_line_error_naming_both_ways_out(no_hub):
    t = time.perf_counter()
    with pytest.raises(InputError) as ei:
        create_backbone(ARCH)                  # pretrained=True is the default
    msg = str(ei.value)
    assert time.perf_counter() - t < 15       # a quick probe, not huggingface_hub's ~45 s of retries
    assert "\n" not in msg and "--weights FILE" in msg and "timm/resnet10t" in msg and "unreachable" in msg
    assert "--no-pretrained" in msg


def test_offline_without_cache_one_line_error(no_hub, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(InputError) as ei:
        create_backbone(ARCH)
    msg = str(ei.value)
    assert "HF_HUB_OFFLINE" in msg and "--weights FILE" in msg and "connect" in msg and "\n" not in msg


def test_offline_from_the_hub_cache(no_hub, monkeypatch):
    """What a box that downloaded once has: timm/<name> in the hub cache; loads with HF_HUB_OFFLINE=1."""
    repo, names = hub_weights(ARCH)
    assert repo == "timm/resnet10t.c3_in1k"
    snap = no_hub / "hf" / "hub" / f"models--{repo.replace('/', '--')}"
    rev = "0" * 40
    (snap / "refs").mkdir(parents=True)
    (snap / "refs" / "main").write_text(rev)
    (snap / "snapshots" / rev).mkdir(parents=True)
    src = _imagenet_like(3)
    _save_safetensors(src, snap / "snapshots" / rev / "model.safetensors")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    model, info = create_backbone(ARCH)
    _assert_backbone_equal(model, src)
    assert info.kind == "hub" and info.location == repo and "Hugging Face hub" in info.describe()
    monkeypatch.delenv("HF_HUB_OFFLINE")      # cached + endpoint refusing: still no contact needed
    model, info = create_backbone(ARCH)
    _assert_backbone_equal(model, src)


def test_no_pretrained_is_random_init_and_says_so():
    model, info = create_backbone(ARCH, pretrained=False)
    assert info.kind == "none" and not info.pretrained and "from scratch" in info.describe()
    assert tuple(model.state_dict()["fc.weight"].shape)[0] == 1
    with pytest.raises(InputError, match="unknown timm architecture"):
        create_backbone("resnet_nonexistent_xyz", pretrained=False)
