"""Where the detector looks: Grad-CAM heatmaps over a face crop.

Grad-CAM (Selvaraju et al., 2017) weighs the last feature map's channels by the mean gradient of the
"fake" logit and keeps the positive part: the regions whose features push the crop towards "fake". timm
splits every classifier into `forward_features` (the feature map) and `forward_head`, so one function
serves any CNN architecture; token-based models (ViTs) give no spatial map and are refused.
"""
from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

from swap.errors import InputError

from .model import Detector, preprocess


def gradcam(detector: Detector, crops: Sequence[np.ndarray], batch_size: int = 16) -> np.ndarray:
    """(N, H, W) float32 heatmaps in [0, 1] at each crop's own size (all crops share one size)."""
    import torch
    import torch.nn.functional as F

    if not len(crops):
        return np.zeros((0, 0, 0), np.float32)
    c, model = detector.config, detector.model
    h, w = crops[0].shape[:2]
    out = []
    for i in range(0, len(crops), batch_size):
        x = preprocess(crops[i:i + batch_size], c.input_size, c.mean, c.std).to(detector.device)
        with torch.enable_grad():
            feats = model.forward_features(x)
            if feats.ndim != 4:
                raise InputError(f"heatmaps need a convolutional detector; {c.arch} has no spatial feature map")
            logit = model.forward_head(feats).float().view(-1)
            # the gradient w.r.t. the feature map only: back through the head, not the backbone's weights;
            # crops are independent in eval mode, so summing gives each its own gradient
            (grad,) = torch.autograd.grad(logit.sum(), feats)
        weights = grad.mean(dim=(2, 3), keepdim=True)
        cam = F.relu((weights * feats).sum(1, keepdim=True)).detach().float()
        cam = F.interpolate(cam, size=(h, w), mode="bilinear", align_corners=False)[:, 0]
        top = cam.flatten(1).amax(1).clamp_min(1e-12).view(-1, 1, 1)
        out.append((cam / top).cpu().numpy())
    return np.concatenate(out).astype(np.float32)


def overlay(crop: np.ndarray, cam: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """RGB uint8: the crop beside the crop with the heatmap blended over it (red = more "fake")."""
    heat = cv2.applyColorMap((np.clip(cam, 0, 1) * 255).astype(np.uint8), cv2.COLORMAP_JET)
    heat = cv2.cvtColor(heat, cv2.COLOR_BGR2RGB)
    blend = (crop.astype(np.float32) * (1 - alpha) + heat.astype(np.float32) * alpha).astype(np.uint8)
    return np.concatenate([crop, blend], 1)
