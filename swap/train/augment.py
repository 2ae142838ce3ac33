"""Batched training augmentation in torch on the training device (one grid_sample per output).

Per sample: L*a*b colour jitter (lightness +-30%, a/b +-8%), random affine (rotate +-10 deg, zoom +-5%,
shift +-5%), horizontal flip 50%; the *input* additionally gets a random warp of a 5x5 control grid
(sigma 5/256 of the size), the *target* and its masks only the affine (faceswap's recipe).

Options as in faceswap/DeepFaceLab: no warp (the input is the target: sharpens a trained model), no flip,
no colour jitter, and warp-to-landmarks (instead of the random warp, the input is bent with a thin-plate
spline so its landmarks sit where a similar face of the *other* identity has them).
"""
from __future__ import annotations

import math
from typing import Any, Callable, Dict, Optional, Tuple

import torch
import torch.nn.functional as F

from .config import AugmentConfig


# sRGB <-> CIE L*a*b (D65)
_M = torch.tensor([[0.412453, 0.357580, 0.180423], [0.212671, 0.715160, 0.072169], [0.019334, 0.119193, 0.950227]])
_WHITE = torch.tensor([0.950456, 1.0, 1.088754])
_ON_DEVICE: Dict[Tuple[str, torch.device, torch.dtype], Any] = {}


def _on_device(name: str, like: torch.Tensor, build: Callable[[], Any]) -> Any:
    """Constants built once per device and dtype: a blocking host->GPU copy every step stalls the CPU until
    the GPU has caught up (the step could no longer be queued ahead)."""
    key = (name, like.device, like.dtype)
    if key not in _ON_DEVICE:
        _ON_DEVICE[key] = build()
    return _ON_DEVICE[key]


def _lab_constants(like: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(M, M^-1, white) on like's device."""
    return _on_device("lab", like, lambda: (_M.to(like), torch.linalg.inv(_M).to(like),
                                             _WHITE.to(like).view(1, 3, 1, 1)))


def rgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    lin = torch.where(rgb > 0.04045, ((rgb + 0.055) / 1.055) ** 2.4, rgb / 12.92)
    m, _, white = _lab_constants(rgb)
    xyz = torch.einsum("ij,bjhw->bihw", m, lin) / white
    f = torch.where(xyz > 0.008856, xyz.clamp_min(1e-8) ** (1 / 3), 7.787 * xyz + 16 / 116)
    L = 116 * f[:, 1] - 16
    a = 500 * (f[:, 0] - f[:, 1])
    b = 200 * (f[:, 1] - f[:, 2])
    return torch.stack([L, a, b], 1)


def lab_to_rgb(lab: torch.Tensor) -> torch.Tensor:
    fy = (lab[:, 0] + 16) / 116
    fx = fy + lab[:, 1] / 500
    fz = fy - lab[:, 2] / 200
    f = torch.stack([fx, fy, fz], 1)
    _, m_inv, white = _lab_constants(lab)
    xyz = torch.where(f > 0.206893, f ** 3, (f - 16 / 116) / 7.787) * white
    lin = torch.einsum("ij,bjhw->bihw", m_inv, xyz).clamp(0, 1)
    return torch.where(lin > 0.0031308, 1.055 * lin.clamp_min(1e-8) ** (1 / 2.4) - 0.055, 12.92 * lin)


def color_jitter(rgb: torch.Tensor, cfg: AugmentConfig, g: torch.Generator) -> torch.Tensor:
    if cfg.lightness <= 0 and cfg.ab <= 0:
        return rgb
    b = rgb.shape[0]
    r = torch.rand(b, 3, 1, 1, generator=g, device=g.device).to(rgb) * 2 - 1
    lab = rgb_to_lab(rgb)
    L = lab[:, :1] * (1 + r[:, :1] * cfg.lightness)
    ab = lab[:, 1:] + r[:, 1:] * cfg.ab * 127
    return lab_to_rgb(torch.cat([L.clamp(0, 100), ab], 1))


def random_affine(b: int, cfg: AugmentConfig, g: torch.Generator, device) -> torch.Tensor:
    """B,2,3 theta mapping output normalized coords to input normalized coords."""
    u = torch.rand(b, 5, generator=g, device=g.device).to(device)
    ang = (u[:, 0] * 2 - 1) * math.radians(cfg.rotate)
    scale = 1 + (u[:, 1] * 2 - 1) * cfg.zoom
    tx = (u[:, 2] * 2 - 1) * cfg.shift * 2
    ty = (u[:, 3] * 2 - 1) * cfg.shift * 2
    flip = torch.where(u[:, 4] < cfg.flip, -1.0, 1.0).to(device)
    c = cfg.coverage / scale          # output covers the central `coverage` of the stored crop, zoomed
    cos, sin = torch.cos(ang) * c, torch.sin(ang) * c
    theta = torch.stack([torch.stack([cos * flip, -sin, tx], 1), torch.stack([sin * flip, cos, ty], 1)], 1)
    return theta


def random_warp_offsets(b: int, size: int, cfg: AugmentConfig, g: torch.Generator, device) -> torch.Tensor:
    """B,size,size,2 smooth displacement (normalized units) from a jittered 5x5 control grid."""
    n = cfg.warp_points
    off = torch.randn(b, 2, n, n, generator=g, device=g.device).to(device) * (cfg.warp_sigma * 2 * cfg.coverage)
    off = F.interpolate(off, size=(size, size), mode="bicubic", align_corners=True)
    return off.permute(0, 2, 3, 1)


_TPS_ANCHORS = torch.tensor([[-1, -1], [0, -1], [1, -1], [-1, 0], [1, 0], [-1, 1], [0, 1], [1, 1]], dtype=torch.float32)


def _tps_kernel(d2: torch.Tensor) -> torch.Tensor:
    return d2 * torch.log(d2.clamp_min(1e-12))     # r^2 log r^2: the thin-plate spline's radial basis


def _grid_points(n: int) -> torch.Tensor:
    t = torch.linspace(-1, 1, n)
    return torch.stack(torch.meshgrid(t, t, indexing="xy"), -1).reshape(1, n * n, 2)


def landmark_warp_field(src: torch.Tensor, dst: torch.Tensor, n: int = 32, reg: float = 1e-3) -> torch.Tensor:
    """B,2,n,n displacement (normalized units) on an n x n grid over the crop: sampling at q + field(q)
    reads the point of the source face that corresponds to q when the face has dst's shape (dst's landmarks
    map to src's). src, dst: B,68,2 normalized landmarks. The crop's border (8 anchors) stays put; `reg`
    keeps coinciding points (a closed mouth's inner lips) from making the system singular."""
    b, dev = src.shape[0], src.device
    anchors = _on_device("tps_anchors", src, lambda: _TPS_ANCHORS.to(src)).expand(b, -1, -1)
    c = torch.cat([dst, anchors], 1)                                     # control points (B,K,2)
    v = torch.cat([src - dst, torch.zeros_like(anchors)], 1)             # their displacements
    k = c.shape[1]
    K = _tps_kernel(torch.cdist(c, c) ** 2) + reg * torch.eye(k, device=dev)
    P = torch.cat([torch.ones(b, k, 1, device=dev), c], 2)
    A = torch.cat([torch.cat([K, P], 2), torch.cat([P.transpose(1, 2), torch.zeros(b, 3, 3, device=dev)], 2)], 1)
    # solve_ex: no singularity check, which would read a flag back from the GPU every step
    coef = torch.linalg.solve_ex(A, torch.cat([v, torch.zeros(b, 3, 2, device=dev)], 1))[0]   # B,K+3,2
    q = _on_device(f"tps_grid{n}", src, lambda: _grid_points(n).to(src)).expand(b, -1, -1)
    U = _tps_kernel(torch.cdist(q, c) ** 2)
    Pq = torch.cat([torch.ones(b, n * n, 1, device=dev), q], 2)
    out = U @ coef[:, :k] + Pq @ coef[:, k:]                             # B,n*n,2
    return out.transpose(1, 2).reshape(b, 2, n, n)


def augment_batch(images: torch.Tensor, masks: torch.Tensor, size: int, cfg: AugmentConfig,
                  g: torch.Generator,
                  landmarks: Optional[Tuple[torch.Tensor, torch.Tensor]] = None,
                  ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """uint8 images (B,3,S,S) + uint8 masks (B,3,S,S) on the device -> float32 (warped input, target,
    target masks), each B,C,size,size in [0, 1]. With cfg.warp_to_landmarks, `landmarks` = (the faces' own,
    the partner faces') B,68,2 normalized landmarks."""
    b = images.shape[0]
    dev = images.device
    x = color_jitter(images.float() / 255.0, cfg, g)
    both = torch.cat([x, masks.float() / 255.0], 1)
    theta = random_affine(b, cfg, g, dev)
    grid = F.affine_grid(theta, (b, 3, size, size), align_corners=False)
    out = F.grid_sample(both, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    target, tmask = out[:, :3], out[:, 3:]
    if not cfg.warp:
        warped = target
    else:
        if cfg.warp_to_landmarks:
            if landmarks is None:
                raise ValueError("warp_to_landmarks needs the faces' and their partners' landmarks")
            field = landmark_warp_field(*landmarks)
            offsets = F.grid_sample(field, grid, mode="bilinear", padding_mode="border",
                                    align_corners=True).permute(0, 2, 3, 1)
        else:
            offsets = random_warp_offsets(b, size, cfg, g, dev)
        warped = F.grid_sample(x, grid + offsets, mode="bilinear", padding_mode="reflection", align_corners=False)
    return warped.clamp(0, 1), target.clamp(0, 1), tmask


def center_batch(images: torch.Tensor, size: int, coverage: float) -> torch.Tensor:
    """Unaugmented model inputs (central `coverage` of the crop at `size`), float in [0,1]."""
    b = images.shape[0]
    theta = torch.zeros(b, 2, 3, device=images.device)
    theta[:, 0, 0] = coverage
    theta[:, 1, 1] = coverage
    grid = F.affine_grid(theta, (b, 3, size, size), align_corners=False)
    return F.grid_sample(images.float() / 255.0, grid, mode="bilinear", padding_mode="reflection",
                         align_corners=False).clamp(0, 1)
