"""Model card (detect/card.py) and honest verdicts (detect/verdict.py): the rule on constructed cards,
and end to end on a tiny detector trained on graphics-based swaps of the built-in faces."""
from __future__ import annotations

import json

import numpy as np
import pytest

from detect import card as C
from detect.verdict import FAKE, REAL, UNCERTAIN, decide

AE = "veriswap hq 0beaae00 a2b"
GR = "veriswap graphic-faceswap 1234abcd a2b"


def _videos(people, method, good=True, n=3, seed=0, reals=True):
    """n real (unless not `reals`) + n fake videos per person; `good`: fakes score above reals."""
    rng = np.random.default_rng(seed)
    out = []
    for who in people:
        for k in range(n):
            lo, hi = (0.1, 0.4) if good else (0.3, 0.7)
            if reals:
                out.append(C.VideoResult(f"{who}-r{k}", 0, None, list(rng.uniform(lo, hi, 4)), None, [who]))
            lo, hi = (0.6, 0.9) if good else (0.3, 0.7)
            out.append(C.VideoResult(f"{who}-f{k}-{method}", 1, None, list(rng.uniform(lo, hi, 4)), method, [who]))
    for v in out:
        v.score = float(np.mean(v.frames))
    return out


def _card(videos, seen_ids, seen_methods, threshold=0.5):
    res = {"original": C.condition_result(videos, seen_ids, seen_methods)}
    fam = sorted({C.method_family(m) for m in seen_methods})
    return C.ModelCard("det", "resnet10t", 96, {"description": "resnet10t, random init"},
                       {"identities": list(seen_ids), "methods": list(seen_methods), "method_families": fam,
                        "videos_total": 10}, {"dataset": "ds", "split": "test"}, res,
                       {"threshold": threshold, "threshold_method": "balanced_accuracy", "ece": 0.1, "frames": 10},
                       C.false_positives(videos, seen_ids, threshold), [], C.now_utc())


def test_method_family_and_ece():
    assert C.method_family(AE) == "autoencoder" and C.method_family("veriswap original ab a2b") == "autoencoder"
    assert C.method_family(GR) == "graphic" and C.method_family(None) == "unknown"
    assert C.method_family("unlabelled") == "unlabelled"
    assert C.ece([0, 1, 0, 1], [0.0, 1.0, 0.0, 1.0]) == 0.0
    assert C.ece([0, 0, 1, 1], [0.95] * 4) == pytest.approx(0.45)
    assert C.ece([], []) is None


def test_no_card_is_uncertain():
    v = decide(0.99, 0.5, None)
    assert v.label == UNCERTAIN and "no model card" in v.line() and "0.990" in v.line()


def test_never_validated_on_unseen_identities():
    vids = _videos(["astronaut"], AE) + _videos(["person-9"], GR)
    card = _card(vids, ["astronaut", "person-9"], [AE])     # every held-out person was seen in training
    v = decide(0.9, 0.5, card)
    assert v.label == UNCERTAIN
    assert "this detector was never validated on unseen identities" in v.reasons


def test_verdict_given_when_unseen_identities_and_cross_method_hold():
    vids = _videos(["grace"], AE) + _videos(["grace"], GR, seed=1, reals=False)
    card = _card(vids, ["astronaut"], [AE])                # grace unseen; graphic family never trained on
    assert decide(0.8, 0.5, card).label == FAKE
    assert decide(0.2, 0.5, card).label == REAL
    assert "unseen identities" in " ".join(decide(0.8, 0.5, card).basis)
    assert decide(0.8, 0.5, card, input_family="autoencoder").label == FAKE   # family seen, measured


def test_unknown_method_needs_cross_method_measurement():
    vids = _videos(["grace"], AE)
    card = _card(vids, ["astronaut"], [AE])
    v = decide(0.8, 0.5, card)
    assert v.label == UNCERTAIN and "cross-method" in v.line()
    assert decide(0.8, 0.5, card, input_family="autoencoder").label == FAKE
    v = decide(0.8, 0.5, card, input_family="graphic")
    assert v.label == UNCERTAIN and "graphic swaps (a method family it never trained on)" in v.line()


def test_a_family_is_judged_pooled_over_its_methods():
    """Each autoencoder model and direction is a method of one video here: too few for a figure alone, but
    the family's pooled figure (3 fakes vs 3 reals) carries the verdict; an old card without the family
    table is still read per method (and stays UNCERTAIN on these)."""
    reals = [v for v in _videos(["grace"], GR) if v.label == 0]
    fakes = [v for k in range(3) for v in _videos(["grace"], f"veriswap original {k:08x} a2b", n=1, seed=k + 2,
                                                    reals=False)]
    card = _card(reals + fakes, ["astronaut"], [GR])
    fam = card.result("original")["per_family"]["autoencoder"]
    assert fam["fake_videos"] == 3 and fam["real_videos"] == 3 and not fam["seen"] and len(fam["methods"]) == 3
    assert decide(0.8, 0.5, card).label == FAKE
    assert decide(0.8, 0.5, card, input_family="autoencoder").label == FAKE
    del card.results["original"]["per_family"]
    assert decide(0.8, 0.5, card).label == UNCERTAIN


def test_low_auc_or_few_videos_are_uncertain():
    bad = _videos(["grace"], AE, good=False) + _videos(["grace"], GR, seed=1, reals=False)
    v = decide(0.8, 0.5, _card(bad, ["astronaut"], [AE]), input_family="autoencoder")
    assert v.label == UNCERTAIN and "< 0.90" in v.line()
    few = _videos(["grace"], AE, n=2) + _videos(["grace"], GR, n=2, seed=1, reals=False)
    v = decide(0.8, 0.5, _card(few, ["astronaut"], [AE]))
    assert v.label == UNCERTAIN and "needs 3 of each" in v.line()
    card = _card(_videos(["grace"], AE) + _videos(["grace"], GR, seed=1, reals=False), ["astronaut"], [AE])
    v = decide(0.8, 0.5, card, condition="crf40")
    assert v.label == UNCERTAIN and "never measured at crf40" in v.line()
    assert decide(None, 0.5, card).label == UNCERTAIN


def test_card_files_roundtrip_and_key_lines(tmp_path):
    vids = _videos(["grace"], AE) + _videos(["grace"], GR, seed=1, reals=False)
    card = _card(vids, ["astronaut"], [AE], threshold=0.95)
    assert card.false_positives["unseen_real_videos"] == 3 and card.false_positives["flagged"] == 0
    card.save(tmp_path)
    back = C.ModelCard.load(tmp_path)
    assert back == card
    md = (tmp_path / "MODEL_CARD.md").read_text()
    assert "| original |" in md and "graphic" in md and "**no**" in md
    lines = "\n".join(card.key_lines())
    assert "on unseen identities 1.000" in lines and "graphic (never trained on) video AUC 1.000" in lines
    assert "| graphic | **no** |" in md
    assert C.ModelCard.load(tmp_path / "nothing") is None
    (tmp_path / "model_card.json").write_text("{")
    with pytest.raises(Exception, match="damaged"):
        C.ModelCard.load(tmp_path)


# ---- end to end: a tiny detector, its card written by build_card, verdicts from it -------------------

@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from detect import dataset as D
    from detect.train import TrainSettings, train_detector
    from provenance.keys import generate_identity
    from swap.graphic.run import GraphicSwapSettings, graphic_swap
    from swap.samples import load_photo, make_face_video, save_photo

    d = tmp_path_factory.mktemp("card")
    a, g = load_photo("astronaut"), load_photo("grace_hopper")
    real = {k: make_face_video(d / "real" / f"{k}.mp4", v, frames=8, audio=False)
            for k, v in {"astronaut": a, "astronaut_flip": a[:, ::-1].copy(),
                         "grace": g, "grace_flip": g[:, ::-1].copy()}.items()}
    generate_identity(d / "keys", name="card test")
    srcs = {"astronaut": save_photo("grace_hopper", d / "g.png"), "grace": save_photo("astronaut", d / "a.png")}
    for k, p in real.items():
        graphic_swap(GraphicSwapSettings(source=str(srcs[k.split("_")[0]]), target=str(p),
                                         out=str(d / "fake" / f"{k}_gswap.mp4"), key_dir=str(d / "keys")))
    D.build_dataset([d / "real"], [d / "fake"], d / "ds", D.DatasetSettings(frames=4))
    train_detector(d / "ds", d / "det", TrainSettings(arch="resnet10t", input_size=64, batch_size=8, lr=1e-3,
                                                      epochs=2, augment=0.5, device="cpu", pretrained=False))
    return d


def test_build_card_end_to_end(tiny):
    card = C.build_card(tiny / "ds", tiny / "det", conditions=("original", "crf40+0.5x"))
    card.save(tiny / "det")
    assert (tiny / "det" / "model_card.json").is_file() and (tiny / "det" / "MODEL_CARD.md").is_file()
    d = json.loads((tiny / "det" / "model_card.json").read_text())
    assert set(d["results"]) == {"original", "crf40+0.5x"}
    assert d["training"]["method_families"] == ["graphic"]
    assert d["backbone"]["kind"] == "none" and "from scratch" in d["backbone"]["description"]
    ids = set(d["training"]["identities"]) | set(d["evaluation"]["identities"])
    assert ids <= {"astronaut", "grace_hopper"} and ids            # the built-in photos, named
    o = d["results"]["original"]["overall"]
    assert o["real_videos"] + o["fake_videos"] >= 2 and d["calibration"]["frames"] > 0
    deg = d["results"]["crf40+0.5x"]["overall"]
    assert deg["real_videos"] + deg["fake_videos"] + deg["not_judged"] == o["real_videos"] + o["fake_videos"]
    # 8 videos of two people: no held-out identity is unseen, so no verdict may be given
    v = decide(0.99, card.calibration["threshold"], card)
    assert v.label == UNCERTAIN and any("unseen identities" in r for r in v.reasons)
    assert any("generalisation to new people is not measured" in w for w in card.warnings)
