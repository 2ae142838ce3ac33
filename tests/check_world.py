"""Real material for the `veriswap check` tests (imported by tests/test_check*.py; not a conftest), made
with the project's own tools: a keygen identity, a signed AI face-swap-like video (C2PA swap facts), a
camera clip with footage tags, a copy of it with one coded frame altered, a signed swap with one coded
frame altered, an unsigned clip, a signed photo, and a small timm detector folder."""
from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Dict

N = 16                       # frames per clip
SIZE = (320, 240)
ALTERED = 7                  # the coded frame the tamper copies change
ANCHORS = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "c2pa"


def make_detector(out: Path, threshold: float = 0.5, pretrained_note: bool = False) -> Path:
    """A resnet10t detector folder (random weights; `pretrained_note` records a weights_init as a
    detector trained from pretrained weights would)."""
    from detect.model import DetectorConfig, create_model, default_input_size, normalization, save_weights

    out.mkdir(parents=True, exist_ok=True)
    import torch

    torch.manual_seed(0)
    model = create_model("resnet10t")
    mean, std = normalization(model)
    cfg = DetectorConfig(arch="resnet10t", input_size=64, mean=mean, std=std, threshold=threshold,
                         crop_size=64, weights_init="resnet10t_imagenet.safetensors" if pretrained_note else None)
    assert default_input_size(model) > 0
    cfg.save(out)
    save_weights(model, out / "model.safetensors")
    (out / "metrics.json").write_text(json.dumps({}))
    return out


def flip_frame_byte(src: Path, dst: Path, k: int) -> Path:
    """Copy `src` with one byte near the end of coded frame k flipped in place (alter_frame's edit, but
    without a remux: the C2PA manifest stays in the file and its hash no longer matches)."""
    import av

    with av.open(str(src)) as c:
        pkt = [p for p in c.demux(c.streams.video[0]) if p.size][k]
        pos, size = pkt.pos, pkt.size
    data = bytearray(Path(src).read_bytes())
    data[pos + size - 3] ^= 0x55
    Path(dst).write_bytes(bytes(data))
    return Path(dst)


def build(d: Path) -> Dict[str, Path]:
    from provenance.c2pa_sign import SwapFacts, sign_file
    from provenance.keys import generate_identity
    from provenance.remux import alter_frame, remux_edit
    from provenance.tags import tag_video
    from swap.samples import make_face_video, save_photo

    ident = generate_identity(d / "keys", name="check test")
    cam = make_face_video(d / "camera" / "cam.mp4", "astronaut", frames=N, size=SIZE, audio=False)
    tag_video(cam, ident.key_dir / "tag.key")
    edit = remux_edit(cam, d / "camera" / "cam_edit.mp4", alter_frame(ALTERED))
    shutil.copy(str(cam) + ".tags", str(edit) + ".tags")
    src = make_face_video(d / "sources" / "grace.mp4", "grace_hopper", frames=N, size=SIZE, audio=False)
    facts = SwapFacts(model_hash="sha256:" + "0" * 64, direction="b2a", identities={"a": "astronaut", "b": "grace_hopper"},
                      frames_total=N, frames_swapped=N, faces_swapped=N, source=str(src), model_name="original")
    swap = sign_file(src, d / "outputs" / "grace_swap.mp4", ident, facts=facts).out
    swap_edit = flip_frame_byte(swap, d / "outputs" / "grace_swap_edit.mp4", ALTERED)
    unsigned = make_face_video(d / "unsigned" / "clip.mp4", "grace_hopper", frames=N, size=SIZE, audio=False)
    photo_src = save_photo("astronaut", d / "sources" / "astronaut.jpg")
    photo = sign_file(photo_src, d / "photos" / "astronaut.jpg", ident).out
    return {"dir": d, "keys": ident.key_dir, "root": ident.key_dir / "root.pem", "tag_key": ident.key_dir / "tag.key",
            "cam": cam, "cam_edit": edit, "swap": swap, "swap_edit": swap_edit, "unsigned": unsigned, "photo": photo}
