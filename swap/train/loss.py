"""Masked SSIM + L1 (and/or MSE) reconstruction loss with eye/mouth priority, plus the mask loss of `hq`."""
from __future__ import annotations

from typing import Dict, Optional

import torch
import torch.nn.functional as F

from .config import LossConfig


def _gauss(window: int, sigma: float, device, dtype) -> torch.Tensor:
    x = torch.arange(window, device=device, dtype=dtype) - (window - 1) / 2
    g = torch.exp(-(x ** 2) / (2 * sigma ** 2))
    return g / g.sum()


def ssim_map(x: torch.Tensor, y: torch.Tensor, window: int = 11) -> torch.Tensor:
    """Per-pixel SSIM (B,C,H,W), separable Gaussian window (sigma 1.5), reflection padded."""
    c = x.shape[1]
    g = _gauss(window, 1.5, x.device, x.dtype)
    kx = g.view(1, 1, 1, -1).repeat(c, 1, 1, 1)
    ky = g.view(1, 1, -1, 1).repeat(c, 1, 1, 1)
    p = window // 2

    def blur(t):
        t = F.pad(t, (p, p, p, p), mode="reflect")
        return F.conv2d(F.conv2d(t, kx, groups=c), ky, groups=c)

    mx, my = blur(x), blur(y)
    sxx = blur(x * x) - mx * mx
    syy = blur(y * y) - my * my
    sxy = blur(x * y) - mx * my
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    return ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))


def weight_map(masks: torch.Tensor, cfg: LossConfig) -> torch.Tensor:
    """masks B,3,H,W (face, eyes, mouth in [0,1]) -> B,1,H,W loss weights."""
    face, eyes, mouth = masks[:, :1], masks[:, 1:2], masks[:, 2:3]
    w = cfg.background + (1 - cfg.background) * face
    w = w * (1 + (cfg.eyes - 1) * eyes) * (1 + (cfg.mouth - 1) * mouth * (1 - eyes))
    return w


def reconstruction_loss(pred: torch.Tensor, target: torch.Tensor, masks: torch.Tensor, cfg: LossConfig,
                        pred_mask: Optional[torch.Tensor] = None) -> Dict[str, torch.Tensor]:
    """Weighted masked loss; returns {"loss": total, "face": ..., "mask": ...} (float32 scalars)."""
    pred = pred.float()
    target = target.float()
    w = weight_map(masks.float(), cfg)
    norm = w.sum() * pred.shape[1] + 1e-6
    face = pred.new_zeros(())
    if cfg.l1:
        face = face + cfg.l1 * ((pred - target).abs() * w).sum() / norm
    if cfg.mse:
        face = face + cfg.mse * ((pred - target) ** 2 * w).sum() / norm
    if cfg.ssim:
        face = face + cfg.ssim * ((1 - ssim_map(pred, target, cfg.window)) / 2 * w).sum() / norm
    out = {"face": face, "loss": face}
    if pred_mask is not None:
        m = F.mse_loss(pred_mask.float(), masks[:, :1].float())
        out["mask"] = m
        out["loss"] = face + cfg.mask * m
    return out
