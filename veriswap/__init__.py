"""veriswap: face swaps for research, with provenance and detection built in.

The front door: the `veriswap` command (`veriswap.cli`), the demo (`veriswap.demo`), and the notebook API
below, re-exported from the three packages it sits on (swap/ makes labelled swaps, detect/ scores
videos, provenance/ signs and verifies). Names resolve on first use, so `import veriswap` stays light:

    import veriswap as vs
    vs.extract(["clip_a.mp4"], "faces/a")
    vs.train(vs.TrainConfig(faces_a="faces/a", faces_b="faces/b", model_dir="runs/ab", iterations=1000))
    vs.convert("clip_a.mp4", "runs/ab", "out/a2b.mp4", settings=vs.ConvertSettings(direction="a2b"))
    vs.build_dataset(real=[...], fake=["out/a2b.mp4"], out_dir="ds"); vs.train_detector("ds", "det")
    vs.score_video("suspect.mp4", vs.Detector("det"))
    vs.verify_file("out/a2b.mp4", ["keys/root.pem"]); vs.check_video("cam.mp4", "cam.tags", key)
    vs.check_file("suspect.mp4", vs.CheckOptions(trust_anchors=["root.pem"]))    # one verdict from all evidence
"""
from __future__ import annotations

from provenance import __version__

# name -> the module that defines it (resolved by __getattr__ below, with plain imports)
_API = {
    "ExtractSettings": "swap.extract", "extract": "swap.extract",
    "SortSettings": "swap.sort", "sort_faces": "swap.sort",
    "TrainConfig": "swap.train", "train": "swap.train",
    "ConvertSettings": "swap.convert", "convert": "swap.convert", "convert_many": "swap.convert",
    "Labels": "swap.labels", "read_labels": "swap.labels",
    "DatasetSettings": "detect.dataset", "build_dataset": "detect.dataset",
    "TrainSettings": "detect.train", "train_detector": "detect.train",
    "Detector": "detect.model", "evaluate": "detect.evaluate", "score_video": "detect.score",
    "generate_identity": "provenance.keys", "load_identity": "provenance.keys",
    "sign_file": "provenance.c2pa_sign", "verify_file": "provenance.c2pa_verify",
    "tag_video": "provenance.tags", "check_video": "provenance.tags", "load_tag_key": "provenance.tags",
    "DemoOptions": "veriswap.demo", "run_demo": "veriswap.demo",
    "CheckOptions": "veriswap.check", "check_file": "veriswap.check",
}

__all__ = ["__version__", *sorted(_API)]


def __getattr__(name: str):
    where = _API.get(name)
    if where is None:
        raise AttributeError(f"module 'veriswap' has no attribute {name!r}")
    if where.startswith("swap."):
        from swap import convert, extract, labels, sort, train   # packages whose names resolve lazily too
        mod = {"swap.extract": extract, "swap.sort": sort, "swap.train": train, "swap.convert": convert,
               "swap.labels": labels}[where]
    elif where.startswith("detect."):
        from detect import dataset, evaluate, model, score
        from detect import train as detect_train
        mod = {"detect.dataset": dataset, "detect.train": detect_train, "detect.model": model,
               "detect.evaluate": evaluate, "detect.score": score}[where]
    elif where.startswith("provenance."):
        from provenance import c2pa_sign, c2pa_verify, keys, tags
        mod = {"provenance.keys": keys, "provenance.c2pa_sign": c2pa_sign, "provenance.c2pa_verify": c2pa_verify,
               "provenance.tags": tags}[where]
    elif where == "veriswap.check":
        from . import check as mod
    else:
        from . import demo as mod
    value = getattr(mod, name)
    globals()[name] = value         # resolved once
    return value
