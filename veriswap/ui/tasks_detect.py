"""The Detect page's jobs: practice material from the built-in real people, a dataset, a detector, an
evaluation. Each is the library call `veriswap detect` makes (detect.dataset.build_dataset,
detect.train.train_detector, detect.evaluate.evaluate + detect.metrics.roc_curve), or, for the practice
material, the sample functions the demo and bench/detect_recipe.py use (swap.samples for real clips,
swap.graphic.graphic_swap for labelled, signed swaps). Registered in tasks.TASKS."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Tuple

from .taskutil import Ctx, plain, progress


def sample_people(n: int) -> List[Tuple[str, Any]]:
    """`n` of the toolkit's real people (the two built-in photos and the wheel identities, see docs/samples.md),
    spread over all of them so that they come from different photos: (name, RGB photo)."""
    from swap import samples as S

    people = S.all_people()
    n = max(1, min(int(n), len(people)))
    return [people[(i * len(people)) // n] for i in range(n)]


def run_detect_samples(p: Dict[str, Any], ctx: Ctx) -> Dict[str, Any]:
    """Real clips of `people` built-in people (FOLDER/real/NAME.mp4) and, for each clip, a labelled, signed swap
    with another built-in person's face (FOLDER/swaps/TARGET_as_SOURCE.mp4 + .labels/). The faces put in come
    from people without a clip of their own, so that no face is on both sides of a dataset's split. What
    exists already is kept (a resume goes on from there)."""
    import cv2

    from swap.graphic.run import GraphicSwapSettings, graphic_swap
    from swap.samples import make_face_video

    folder, frames = Path(p["folder"]), int(p.get("frames", 16))
    n = int(p.get("people", 6))
    if not 3 <= n <= 9:
        raise ValueError("practice videos: choose 3 to 9 people (a dataset needs 3 or more for train, val and "
                         "test; as many others lend their faces to the swaps)")
    ctx.report(phase="finding the built-in people", done=0, total=None)
    people = sample_people(2 * n)
    pairs = list(zip(people[0::2], people[1::2]))          # (the person filmed, the face put in)
    real, swaps, warnings = [], [], []
    for i, ((target, rgb), (source, src_rgb)) in enumerate(pairs):
        ctx.report(phase=f"real clip of {target}", done=2 * i, total=2 * n)
        clip = folder / "real" / f"{target}.mp4"
        if not clip.is_file():
            make_face_video(clip, rgb, frames=frames, audio=False)
        real.append(str(clip))
        photo = folder / "faces" / f"{source}.png"
        photo.parent.mkdir(parents=True, exist_ok=True)
        if not photo.is_file():
            cv2.imwrite(str(photo), cv2.cvtColor(src_rgb, cv2.COLOR_RGB2BGR))
        ctx.report(phase=f"swap: {source}'s face in {target}'s clip", done=2 * i + 1, total=2 * n)
        out = folder / "swaps" / f"{target}_as_{source}.mp4"
        if not out.is_file():
            try:
                graphic_swap(GraphicSwapSettings(source=str(photo), target=str(clip), out=str(out),
                                                 key_dir=p.get("key_dir") or None))
            except Exception as e:  # noqa: BLE001 - a pair the graphic swap cannot do is reported, the rest goes on
                warnings.append(f"no swap of {source} into {target}'s clip: {str(e).splitlines()[0] if str(e) else e}")
                continue
        swaps.append(str(out))
    if len(swaps) < 3:
        raise ValueError(f"only {len(swaps)} swaps could be made (need 3): " + "; ".join(warnings))
    return {"folder": str(folder), "people": [t for (t, _), _ in pairs], "faces_put_in": [s for _, (s, _) in pairs],
            "real": real, "swaps": swaps, "warnings": warnings}


def run_detect_dataset(p: Dict[str, Any], ctx: Ctx) -> Dict[str, Any]:
    from detect.dataset import DatasetSettings, build_dataset

    s = DatasetSettings(frames=int(p.get("frames", 16)))
    if p.get("split"):
        s.split = DatasetSettings.parse_split(str(p["split"]))
    summary = build_dataset([Path(x) for x in p["real"]], [Path(x) for x in p["fake"]], Path(p["out"]), settings=s,
                            progress=progress(ctx, "dataset"))
    return plain(summary)


def run_detect_train(p: Dict[str, Any], ctx: Ctx) -> Dict[str, Any]:
    from detect.train import TrainSettings, train_detector

    weights = p.get("weights") or None
    s = TrainSettings(arch=p.get("arch") or "resnet10t", epochs=int(p.get("epochs", 5)),
                      batch_size=int(p.get("batch_size", 32)), input_size=int(p["input_size"]) if p.get("input_size") else None,
                      weights=weights, pretrained=bool(weights) or bool(p.get("pretrained", False)),
                      sbi=bool(p.get("sbi", False)), device=p.get("device", "auto"))

    def on_step(epoch: int, step: int, steps: int, loss: float) -> None:
        ctx.report(phase=f"epoch {epoch + 1} of {s.epochs}", done=epoch * steps + step, total=s.epochs * steps,
                   loss=float(loss), force=False)
    summary = plain(train_detector(Path(p["dataset"]), Path(p["out"]), s, progress=on_step))
    if any(sig in str(summary.get("stopped") or "") for sig in ("SIGTERM", "SIGINT")):
        summary["_stopped"] = True          # cancelled: the finished epochs are kept, Resume continues after them
    return summary


def run_detect_eval(p: Dict[str, Any], ctx: Ctx) -> Dict[str, Any]:
    import numpy as np

    from detect import metrics as M
    from detect.evaluate import evaluate

    rep = evaluate(Path(p["dataset"]), Path(p["detector"]), split=p.get("split", "test"),
                   progress=progress(ctx, "evaluate"))
    d = rep.to_dict()
    vs = list(rep.per_video.values())
    y = np.array([v["label"] for v in vs])
    s = np.array([v["score"] for v in vs])
    if len(set(y.tolist())) == 2:
        fpr, tpr, _ = M.roc_curve(y, s)
        d["roc_video"] = {"fpr": [round(float(x), 5) for x in fpr], "tpr": [round(float(x), 5) for x in tpr]}
    return d
