"""Step 3, train: the `original` model for the time limit in total (a re-run trains only what is missing)."""
from __future__ import annotations

import json
from pathlib import Path

from .core import MIN_TRAIN_SECONDS, PERSON_A, PERSON_B, Context, DemoInterrupted, StepResult


def _trained_seconds(model_dir: Path) -> float:
    try:
        return float(json.loads((model_dir / "state.json").read_text()).get("elapsed", 0.0))
    except (OSError, ValueError, AttributeError):
        return 0.0


def _step_train(ctx: Context, res: StepResult) -> None:
    o = ctx.opts
    done_s = _trained_seconds(ctx.model_dir) if (ctx.model_dir / "model.safetensors").exists() else 0.0
    left = o.time_limit - done_s
    if done_s and left < MIN_TRAIN_SECONDS:
        res.resumed = True
        st = json.loads((ctx.model_dir / "state.json").read_text())
        ctx.say(f"already trained {done_s:.0f} s ({st.get('iteration')} iterations) of the "
                f"{o.time_limit:.0f} s limit; pass a larger --time-limit to train on")
        summary = {"iteration": st.get("iteration"), "iterations_run": 0, "seconds": 0.0, "it_per_s": None,
                   "last_loss": st.get("last_loss"), "first_loss": None, "stopped_by": "already done",
                   "identity_check": (st.get("identity_checks") or [None])[-1], "resumed_from": st.get("iteration")}
    else:
        from swap.train import TrainConfig, train
        ctx.say(f"model 'original' (64 px, shared encoder + one decoder per person), batch {o.batch_size}"
                f" per person, {left:.0f} s of training" + (f" (resuming after {done_s:.0f} s)" if done_s else ""))
        cfg = TrainConfig(faces_a=str(ctx.faces(PERSON_A)), faces_b=str(ctx.faces(PERSON_B)),
                          model_dir=str(ctx.model_dir), model="original", batch_size=o.batch_size,
                          time_limit=left, lr=o.lr, save_every=0, preview_every=0, device=o.device,
                          progress=o.progress, identity_check=True)
        summary = train(cfg)
        if summary["stopped_by"] in ("SIGINT", "SIGTERM"):
            raise DemoInterrupted(f"interrupted while training (checkpoint saved at iteration "
                                  f"{summary['iteration']}); run the demo again on {ctx.dir} to resume")
    last = summary.get("last_loss") or {}
    first = summary.get("first_loss") or {}
    if summary["iterations_run"]:
        ctx.say(f"{summary['iterations_run']} iterations in {summary['seconds']:.0f} s "
                f"({summary['it_per_s']} it/s on {summary.get('device', 'cpu')}), loss A/B "
                f"{first.get('loss_a', float('nan')):.3f}/{first.get('loss_b', float('nan')):.3f} -> "
                f"{last.get('loss_a', float('nan')):.3f}/{last.get('loss_b', float('nan')):.3f}")
    ic = summary.get("identity_check")
    ic_txt = ""
    if ic:
        from swap.quality import identity_check_line
        ic_txt = identity_check_line(ic)
        ctx.say(ic_txt)
    ctx.say(f"checkpoint and preview.png (rows A, A->A, A->B, B, B->B, B->A) in {ctx.model_dir}")
    res.lines.append(f"{summary['iteration']} iterations in total ({_trained_seconds(ctx.model_dir):.0f} s), "
                     f"loss A {last.get('loss_a', float('nan')):.3f} B {last.get('loss_b', float('nan')):.3f}")
    if ic_txt:
        res.lines.append(ic_txt)
    ctx.data["train"] = {"model_dir": str(ctx.model_dir), "preview": str(ctx.model_dir / "preview.png"),
                         "iteration": summary["iteration"], "iterations_run": summary["iterations_run"],
                         "trained_seconds": round(_trained_seconds(ctx.model_dir), 1),
                         "last_loss": last, "identity_check": ic}

