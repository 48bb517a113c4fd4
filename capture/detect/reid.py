"""Keypoint-guided part colour histograms: a re-ID appearance descriptor computed beside the detector.

The worker computes one descriptor per detected person from the image and the person's 2D keypoints
and sends it on the wire (``Detections2D.embeddings``); the node compares descriptors across views
and never touches images. The idea follows the part-based colour histograms of person
re-identification: Gray & Tao, "Viewpoint Invariant Pedestrian Recognition with an Ensemble of
Localized Features" (ELF), ECCV 2008, and Farenzena et al., "Person Re-Identification by
Symmetry-Driven Accumulation of Local Features" (SDALF), CVPR 2010, whose body parts (torso and legs,
split along symmetry axes) are placed here by the detector's keypoints instead.

Parts (COCO-17 keypoints): torso (the shoulder-hip quadrilateral), upper arms (shoulder-elbow bands),
thighs (hip-knee bands) and shins (knee-ankle bands); left and right limbs share one histogram, which
keeps the descriptor unchanged by a left/right flip of the detector and lets one visible leg stand for
both. A band is a rectangle along the limb segment whose width is proportional to the person's size
(the torso length, or the box height where the torso is not seen).

Histogram per part (illumination: scaling a pixel's RGB scales V and leaves hue and saturation
unchanged, Smith 1978): chromatic pixels (S and V above thresholds) vote into hue x saturation bins,
hue soft-assigned to its two nearest circular bins; achromatic pixels (grey, black, white clothing,
whose hue is noise) vote into a few coarse value bins. Each part histogram is L1-normalised and
square-rooted (Hellinger map), so the dot product of two part blocks is their Bhattacharyya
coefficient in [0, 1].

Descriptor layout (``D = N_PARTS * BINS_PER_PART``): ``N_PARTS`` blocks in :data:`PARTS` order. A
part without support (a joint below ``min_conf``, or fewer than ``min_pixels`` sampled pixels) is an
all-zero block; the valid blocks are each scaled to L2 norm ``1 / sqrt(n_valid)``, so the whole
vector has unit L2 norm (all zeros when no part is seen). Convention: the plain cosine of two
descriptors is then ``sum_common BC_k / sqrt(n_a * n_b)``, the Bhattacharyya coefficients of the
parts seen in both, shrunk when either misses parts; :func:`appearance_similarity` removes that
shrinkage and averages over the common parts only.
"""

from __future__ import annotations

from typing import Final

import cv2
import numpy as np

from capture.detect.detector import check_image_bgr
from core.errors import ShapeError
from core.skeleton import COCO17

__all__ = [
    "BINS_PER_PART",
    "DIM",
    "N_PARTS",
    "PARTS",
    "appearance_similarity",
    "part_histograms",
]

PARTS: Final = ("torso", "upper_arms", "thighs", "shins")
"""Body parts in descriptor order."""
N_PARTS: Final = len(PARTS)
HUE_BINS: Final = 12
"""Hue bins over the circle (30 degrees each)."""
SAT_CENTERS: Final = (45.0, 75.0, 110.0, 155.0, 215.0)
"""Centres of the saturation bins of chromatic pixels, OpenCV 8-bit (0-255); dense at low saturation,
where indoor clothing lies."""
CHROMA_VALUE_CENTERS: Final = (70.0, 170.0)
"""Centres of the coarse value bins of chromatic pixels (dark / bright, e.g. maroon / pink)."""
VALUE_BINS: Final = 3
"""Coarse value bins of achromatic pixels (dark, mid, bright)."""
SAT_MIN: Final = 30
"""Lowest OpenCV 8-bit saturation (0-255) of a chromatic pixel."""
VALUE_MIN: Final = 30
"""Lowest OpenCV 8-bit value (0-255) of a chromatic pixel; darker pixels are achromatic."""
_CHROMA_BINS: Final = HUE_BINS * len(SAT_CENTERS) * len(CHROMA_VALUE_CENTERS)
BINS_PER_PART: Final = _CHROMA_BINS + VALUE_BINS
DIM: Final = N_PARTS * BINS_PER_PART
"""Descriptor length D."""

_J = {name: COCO17.index(name) for name in COCO17.joints}
_TORSO: Final = (_J["left_shoulder"], _J["right_shoulder"], _J["right_hip"], _J["left_hip"])
_LIMBS: Final = (  # (part index, joint a, joint b, half-width as a fraction of the torso length)
    (1, _J["left_shoulder"], _J["left_elbow"], 0.12),
    (1, _J["right_shoulder"], _J["right_elbow"], 0.12),
    (2, _J["left_hip"], _J["left_knee"], 0.16),
    (2, _J["right_hip"], _J["right_knee"], 0.16),
    (3, _J["left_knee"], _J["left_ankle"], 0.12),
    (3, _J["right_knee"], _J["right_ankle"], 0.12),
)
_LIMB_PART, _LIMB_A, _LIMB_B = (np.array([limb[i] for limb in _LIMBS]) for i in range(3))
_LIMB_HALF = np.array([limb[3] for limb in _LIMBS])
_TORSO_SHRINK: Final = 0.8
"""The torso quadrilateral is shrunk towards its centroid by this factor (keeps the arms and the
background at the shoulders out)."""
_LIMB_SPAN: Final = (0.1, 0.9)
"""Part of a limb segment its band covers (keeps the joints, where parts meet, out)."""
_TORSO_PER_BOX_HEIGHT: Final = 0.3
"""Torso length assumed per box height where the torso is not seen."""
_SAMPLES_PER_TORSO: Final = 32.0
"""Sampling: image rows and columns are strided so that the torso spans about this many samples."""


def _quads(pose: np.ndarray, box: np.ndarray, min_conf: float) -> tuple[list[tuple[int, np.ndarray]], float]:
    """Part polygons of one person, ``[(part index, (4, 2) float64 pixels)]`` (parts without their
    joints left out), and the person's torso length, pixels."""
    ok = pose[:, 2] >= min_conf
    xy = pose[:, :2].astype(np.float64)
    out: list[tuple[int, np.ndarray]] = []
    torso = None
    if ok[list(_TORSO)].all():
        q = xy[list(_TORSO)]
        torso = float(np.linalg.norm(q[:2].mean(0) - q[2:].mean(0)))
        c = q.mean(0)
        out.append((0, c + _TORSO_SHRINK * (q - c)))
    if not torso or torso < 1.0:
        torso = _TORSO_PER_BOX_HEIGHT * float(box[3] - box[1])
    use = ok[_LIMB_A] & ok[_LIMB_B]
    pa, pb = xy[_LIMB_A[use]], xy[_LIMB_B[use]]  # (L, 2)
    d = pb - pa
    n = np.hypot(d[:, 0], d[:, 1])
    keep = n >= 1.0
    d, pa, n = d[keep], pa[keep], n[keep]
    normal = np.stack([-d[:, 1], d[:, 0]], axis=1) * (_LIMB_HALF[use][keep] * torso / n)[:, None]
    p0, p1 = pa + _LIMB_SPAN[0] * d, pa + _LIMB_SPAN[1] * d
    bands = np.stack([p0 + normal, p1 + normal, p1 - normal, p0 - normal], axis=1)  # (L, 4, 2)
    out += list(zip(_LIMB_PART[use][keep].tolist(), bands, strict=True))
    return out, torso


def _front(poses: np.ndarray, boxes: np.ndarray, min_conf: float) -> np.ndarray:
    """(P,) image row of each person's lowest confident joint (the box bottom without one), pixels.

    Occlusion order: with a camera above the floor looking at people standing on it, a person whose
    feet are lower in the image is nearer to the camera and hides the people behind.
    """
    ok = poses[..., 2] >= min_conf
    lowest = np.where(ok, poses[..., 1], -np.inf).max(axis=1, initial=-np.inf)
    return np.where(np.isfinite(lowest), lowest, boxes[:, 3])


def _soft(x: np.ndarray, centers: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Linear soft assignment of ``x`` to bins at ``centers`` (clamped at the ends): lower bin index
    and the weight of the next bin; one bin gives index 0 and weight 0."""
    if len(centers) == 1:
        return np.zeros(x.shape, np.int64), np.zeros(x.shape)
    f = np.interp(x, centers, np.arange(len(centers), dtype=np.float64))
    i0 = np.minimum(f.astype(np.int64), len(centers) - 2)
    return i0, f - i0


def _histograms(hsv: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """(N_PARTS, BINS_PER_PART) float64 votes of the pixels with label > 0 (part = label - 1); each
    pixel's votes sum to 1."""
    sel = labels > 0
    part = labels[sel].astype(np.int64) - 1
    h, s, v = (hsv[..., i][sel].astype(np.float64) for i in range(3))
    chrom = (s >= SAT_MIN) & (v >= VALUE_MIN)
    base = part * BINS_PER_PART
    # chromatic: trilinear votes (broadcast over the 2 x 2 x 2 neighbouring bins), hue over its
    # circle, saturation and value clamped at the end bins; achromatic: one vote in a value bin
    hc, sc, vc, bc = h[chrom], s[chrom], v[chrom], base[chrom]
    hb = hc * (HUE_BINS / 180.0) - 0.5
    h0 = np.floor(hb)
    wh = hb - h0
    s0, ws = _soft(sc, SAT_CENTERS)
    v0, wv = _soft(vc, CHROMA_VALUE_CENTERS)
    n_s, n_v = len(SAT_CENTERS), len(CHROMA_VALUE_CENTERS)
    d = np.array([0, 1])
    hi = (h0.astype(np.int64)[:, None] + d) % HUE_BINS  # (N, 2)
    si = np.minimum(s0[:, None] + d, n_s - 1)
    vi = np.minimum(v0[:, None] + d, n_v - 1)
    idx = bc[:, None, None, None] + (hi[:, :, None, None] * n_s + si[:, None, :, None]) * n_v + vi[:, None, None, :]
    w = lambda f: np.stack([1.0 - f, f], axis=1)  # noqa: E731
    wts = w(wh)[:, :, None, None] * w(ws)[:, None, :, None] * w(wv)[:, None, None, :]
    achrom = _CHROMA_BINS + np.minimum((v[~chrom] * VALUE_BINS / 256).astype(np.int64), VALUE_BINS - 1)
    counts = np.bincount(
        np.concatenate([idx.ravel(), base[~chrom] + achrom]),
        np.concatenate([wts.ravel(), np.ones(achrom.shape)]),
        minlength=N_PARTS * BINS_PER_PART,
    )
    return counts.reshape(N_PARTS, BINS_PER_PART)


def part_histograms(
    image_bgr: np.ndarray,
    poses: np.ndarray,
    boxes: np.ndarray,
    *,
    min_conf: float = 0.3,
    min_pixels: int = 20,
) -> np.ndarray:
    """Keypoint-guided part colour histograms, one re-ID descriptor per person (SDALF / ELF style).

    Args:
        image_bgr: (H, W, 3) uint8 BGR image the poses were detected in.
        poses: (P, J, 3) [u_px, v_px, conf] COCO-17 keypoints in ``image_bgr``'s pixels (J = 17).
        boxes: (P, 5) [x1, y1, x2, y2, score] person boxes, pixels (their height sets the part width
            where the torso is not seen).
        min_conf: joints with a lower confidence are not used; a part missing one of its joints is
            not seen.
        min_pixels: sampled pixels a part needs to count as seen.

    Returns:
        (P, D) float32 descriptors, ``D = DIM``: ``N_PARTS`` blocks of hue-saturation and coarse
        value histograms in :data:`PARTS` order, square-rooted; unseen parts are zero blocks and the
        row has unit L2 norm, or is all zeros when no part is seen (see the module docstring).

    Raises:
        ShapeError: ``image_bgr`` is not (H, W, 3) uint8, or ``poses`` / ``boxes`` have the wrong shape.

    Example:
        >>> img = np.full((200, 100, 3), (0, 0, 200), np.uint8)
        >>> pose = np.zeros((1, 17, 3), np.float32)
        >>> pose[0, [5, 6, 11, 12], :] = [[30, 50, 1], [70, 50, 1], [30, 120, 1], [70, 120, 1]]
        >>> d = part_histograms(img, pose, np.array([[20, 40, 80, 190, 0.9]]))
        >>> d.shape == (1, DIM), round(float(np.linalg.norm(d[0])), 4), bool(d[0, BINS_PER_PART:].any())
        (True, 1.0, False)
    """
    image_bgr = np.asarray(image_bgr)
    check_image_bgr(image_bgr)
    poses = np.asarray(poses, dtype=np.float32)
    if poses.ndim != 3 or poses.shape[1:] != (COCO17.n_joints, 3):
        raise ShapeError(f"poses must be (P, {COCO17.n_joints}, 3); got {poses.shape}")
    boxes = np.asarray(boxes, dtype=np.float32)
    if boxes.shape != (poses.shape[0], 5):
        raise ShapeError(f"boxes must be ({poses.shape[0]}, 5); got {boxes.shape}")
    H, W = image_bgr.shape[:2]
    out = np.zeros((poses.shape[0], N_PARTS, BINS_PER_PART), np.float64)
    people = [_quads(poses[p], boxes[p], min_conf) for p in range(poses.shape[0])]
    front = _front(poses, boxes, min_conf)
    for p, (quads, torso) in enumerate(people):
        if not quads:
            continue
        pts = np.concatenate([q for _, q in quads])
        x0, y0 = np.floor(np.clip(pts.min(0), 0, [W, H])).astype(int)
        x1, y1 = np.ceil(np.clip(pts.max(0) + 1, 0, [W, H])).astype(int)
        if x1 <= x0 or y1 <= y0:
            continue
        step = max(1, int(torso / _SAMPLES_PER_TORSO))
        crop = image_bgr[y0:y1:step, x0:x1:step]
        hsv = cv2.cvtColor(np.ascontiguousarray(crop), cv2.COLOR_BGR2HSV)
        labels = np.zeros(crop.shape[:2], np.uint8)
        own = [(part + 1, q) for part, q in quads]  # later parts (limbs) draw over the torso where they overlap it
        nearer = [(0, q) for r in np.flatnonzero(front > front[p]) for _, q in people[r][0]]  # occluders erase
        for label, q in own + nearer:
            poly = np.round((q - [x0, y0]) / step * 16).astype(np.int32)  # 4 fractional bits
            cv2.fillConvexPoly(labels, poly, label, lineType=cv2.LINE_8, shift=4)
        out[p] = _histograms(hsv, labels)
    total = out.sum(-1, keepdims=True)
    seen = total[..., 0] >= min_pixels  # (P, N_PARTS); soft votes sum to the pixel count
    blocks = np.sqrt(np.where(seen[..., None], out / np.maximum(total, 1e-12), 0.0))
    n_seen = seen.sum(-1)
    blocks /= np.sqrt(np.maximum(n_seen, 1))[:, None, None]
    return blocks.reshape(poses.shape[0], DIM).astype(np.float32)


def appearance_similarity(a: np.ndarray, b: np.ndarray, *, n_parts: int = N_PARTS, unseen: float = 0.5) -> np.ndarray:
    """Appearance similarity of part descriptors: the mean Bhattacharyya coefficient over the parts
    seen in both (Farenzena et al. 2010 match part by part; here each part's colour histogram).

    Args:
        a: (N, D) descriptors from :func:`part_histograms` (unseen parts are zero blocks).
        b: (M, D) descriptors of the same layout.
        n_parts: number of equal blocks D splits into.
        unseen: similarity where two descriptors have no seen part in common (no evidence either way).

    Returns:
        (N, M) float64 similarities in [0, 1]; 1 for identical part histograms.

    Raises:
        ShapeError: ``a`` and ``b`` are not 2-D with the same D, or D is not a multiple of ``n_parts``.

    Example:
        >>> x = np.zeros((2, 8)); x[0, [0, 4]] = 0.5 ** 0.5; x[1, 4] = 1.0  # person 1 misses part 0
        >>> appearance_similarity(x, x).round(3).tolist()
        [[1.0, 1.0], [1.0, 1.0]]
    """
    from matching.affinity import part_similarity

    if np.ndim(a) != 2 or np.ndim(b) != 2 or np.shape(a)[1] % n_parts:
        raise ShapeError(
            f"a and b must be (N, D) and (M, D) with D a multiple of {n_parts}; got {np.shape(a)}, {np.shape(b)}"
        )
    return np.clip(part_similarity(a, b, n_parts, unseen), 0.0, 1.0)
