"""How `detect train` draws its crops: one shuffled pass by default; more steps than a pass, or --balance,
draw with replacement; --balance gives reals half the draws whatever the dataset's proportions (a dataset
of many swaps of few people would otherwise be mostly fakes)."""
from collections import Counter

import torch

from detect.dataset import Sample
from detect.train import CropSet, _order


def _set(n_real: int, n_fake: int, sbi: bool) -> CropSet:
    samples = [Sample(f"r{i}.png", "v", i, 0, 0, 0) for i in range(n_real)]
    samples += [Sample(f"f{i}.png", "w", i, 0, 0, 1) for i in range(n_fake)]
    return CropSet("/nonexistent", samples, 64, (0.5,) * 3, (0.5,) * 3, True, sbi, 1.0)


def _kinds(cs: CropSet, order: dict) -> Counter:
    idx = list(order["sampler"])
    return Counter("sbi" if cs.items[i][1] else ("fake" if cs.items[i][0].label else "real") for i in idx)


def test_default_is_one_shuffled_pass():
    cs = _set(10, 30, sbi=False)
    order = _order(cs, 8, 5, False, torch.Generator().manual_seed(0))
    assert order["shuffle"] is True and "sampler" not in order


def test_more_steps_than_a_pass_draw_with_replacement():
    cs = _set(10, 30, sbi=False)
    order = _order(cs, 8, 50, False, torch.Generator().manual_seed(0))
    idx = list(order["sampler"])
    assert len(idx) == 400 and len(set(idx)) == 40          # every crop drawn, several times
    k = _kinds(cs, order)
    assert 0.18 < k["real"] / 400 < 0.32                     # proportional: reals are a quarter of the crops


def test_balance_halves_reals_and_splits_fakes_between_sbi_and_swaps():
    cs = _set(10, 90, sbi=True)                              # 10 real, 10 SBI, 90 swapped
    order = _order(cs, 16, 250, True, torch.Generator().manual_seed(1))
    k = _kinds(cs, order)
    n = sum(k.values())
    assert n == 4000
    assert 0.46 < k["real"] / n < 0.54
    assert 0.21 < k["sbi"] / n < 0.29 and 0.21 < k["fake"] / n < 0.29


def test_balance_with_reals_only_and_sbi():
    cs = _set(12, 0, sbi=True)
    k = _kinds(cs, _order(cs, 8, 200, True, torch.Generator().manual_seed(2)))
    assert 0.45 < k["real"] / 1600 < 0.55 and k["fake"] == 0
