"""Head pose (yaw, pitch) from the 68 landmarks of an aligned crop."""
from __future__ import annotations

import math
from typing import Tuple

import numpy as np

# Head pose from 2-D landmarks with the generic 3-D face of the common 6-point PnP model (nose tip at the
# origin, outer eye corners at (+-225, 170, -135), mouth corners at (+-150, -150, -125)), seen from the
# front (orthographic). Turning the head by yaw moves the nose tip sideways from the eye corners' midpoint
# by 135 sin(yaw) while their half-distance is 225 cos(yaw); pitch moves it vertically from the mid-line of
# eyes and mouth (130 behind it, half-height 160, the nose 10 below that line when frontal).
YAW_K = 135 / 225                   # 0.6:    yaw ratio   = YAW_K * tan(yaw)
PITCH_K = 130 / 160                 # 0.8125: pitch ratio = PITCH_0 - PITCH_K * tan(pitch)
PITCH_0 = 10 / 160                  # 0.0625


def head_pose(landmarks: np.ndarray) -> Tuple[float, float]:
    """(yaw, pitch) in degrees from 68 landmarks of an aligned crop (roll already removed by the alignment),
    NaN where the points are degenerate. Approximate (a generic face, see YAW_K / PITCH_K): good for ordering
    and binning one person's faces; the absolute pitch depends on the person's proportions by ~10-15 deg."""
    lm = np.asarray(landmarks, np.float64)
    eye_x, half_w = (lm[36, 0] + lm[45, 0]) / 2, (lm[45, 0] - lm[36, 0]) / 2
    eye_y, mouth_y = (lm[36, 1] + lm[45, 1]) / 2, (lm[48, 1] + lm[54, 1]) / 2
    half_h = (mouth_y - eye_y) / 2
    if half_w <= 1e-6 or half_h <= 1e-6:        # eyes swapped or mouth above the eyes: not a usable face
        return math.nan, math.nan
    yaw = math.degrees(math.atan((lm[30, 0] - eye_x) / half_w / YAW_K))
    pitch = math.degrees(math.atan((PITCH_0 - (lm[30, 1] - (eye_y + half_h)) / half_h) / PITCH_K))
    return yaw, pitch
