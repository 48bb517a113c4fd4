"""Cross-view affinity of 2D person detections: epipolar geometry, appearance, and their combination.

Every pair of detections of one frame in different views gets an affinity in [0, 1] (Dong et al.,
"Fast and Robust Multi-Person 3D Pose Estimation from Multiple Views", CVPR 2019, §3.1):

- geometric: the symmetric point-to-epipolar-line distance (Hartley & Zisserman §9.1, §11.4.3),
  averaged over the joints confident in both views, passed through a logistic map;
- appearance: the cosine similarity of per-detection re-ID descriptors mapped to [0, 1];
- combined (default, ``combination="ratio"``): appearance only breaks ties of geometry: a pair's
  geometric affinity is lowered only where a rival that fits the epipolar geometry about as well
  looks more alike (:func:`appearance_ratio`, a ratio test). ``"geometric_mean"`` is Dong et al.'s
  weighted geometric mean of the absolute affinities (mvpose's "geometry mean" is the weight 1/2),
  for descriptors calibrated across people and views (a trained re-ID network); colour histograms
  are not (on ``pizza_5views`` a person's own views score 0.39-0.96 against each other, different
  people up to 0.93), and their absolute value pulls unambiguous pairs below the match threshold.

All detections of the frame are stacked into N = sum_c P_c items in view order, with ``view_of``
(N,) giving the view of each. Pairs in one view get 0, an item with itself 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from calibration.camera import CameraRig, fundamental_matrix
from core.errors import ShapeError

COMBINATIONS: tuple[str, ...] = ("ratio", "geometric_mean")
"""Valid values of ``AffinityConfig.combination``."""

__all__ = [
    "AffinityConfig",
    "COMBINATIONS",
    "appearance_affinity",
    "appearance_ratio",
    "combine_affinities",
    "epipolar_distances",
    "frame_affinity",
    "geometric_affinity",
    "part_similarity",
    "stack_fundamentals",
    "stack_views",
]


def stack_fundamentals(rig: CameraRig) -> np.ndarray:
    """Fundamental matrices of every ordered view pair of a rig.

    Args:
        rig: the calibrated cameras, in view order (C of them).

    Returns:
        (C, C, 3, 3) ``F[a, b]`` with ``x_b^T F[a, b] x_a = 0`` for undistorted pixels (Hartley &
        Zisserman §9.2), so ``F[a, b] @ x_a`` is the epipolar line of ``x_a`` in view b, and
        ``F[b, a] = F[a, b].T``. ``F[a, a]`` is zero.
    """
    n = len(rig)
    out = np.zeros((n, n, 3, 3))
    for a in range(n):
        for b in range(a + 1, n):
            out[a, b] = fundamental_matrix(rig[a], rig[b])
            out[b, a] = out[a, b].T
    return out


def stack_views(
    points_px: list[np.ndarray], conf: list[np.ndarray]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Concatenate per-view detections into one item list.

    Args:
        points_px: per view c, (P_c, J, 2) undistorted pixels (P_c may be 0).
        conf: per view c, (P_c, J) joint confidences.

    Returns:
        ``(points, conf, view_of, det_of)``: (N, J, 2) pixels, (N, J) confidences, (N,) int view
        index and (N,) int detection index within its view.

    Raises:
        ShapeError: the lists differ in length, or a view's arrays are not (P, J, 2) / (P, J) with one J.
    """
    if len(points_px) != len(conf):
        raise ShapeError(f"points_px and conf must have one entry per view; got {len(points_px)} and {len(conf)}")
    shapes = {p.shape[1] for p in points_px if p.shape[0] > 0}
    if len(shapes) > 1:
        raise ShapeError(f"all views must have the same joint count; got {sorted(shapes)}")
    n_joints = shapes.pop() if shapes else (points_px[0].shape[1] if points_px and points_px[0].ndim == 3 else 0)
    for c, (p, q) in enumerate(zip(points_px, conf, strict=True)):
        if p.shape[0] and (p.shape != (p.shape[0], n_joints, 2) or q.shape != p.shape[:2]):
            raise ShapeError(
                f"view {c}: expected (P, {n_joints}, 2) points and (P, {n_joints}) conf; got {p.shape}, {q.shape}"
            )
    counts = np.array([p.shape[0] for p in points_px], dtype=np.int64)
    view_of = np.repeat(np.arange(len(points_px)), counts)
    det_of = np.concatenate([np.arange(k) for k in counts]) if counts.size else np.zeros(0, dtype=np.int64)
    pts = [p.reshape(-1, n_joints, 2) for p in points_px if p.shape[0]]
    cfs = [q.reshape(-1, n_joints) for p, q in zip(points_px, conf, strict=True) if p.shape[0]]
    if not pts:
        return np.zeros((0, n_joints, 2)), np.zeros((0, n_joints)), view_of, det_of.astype(np.int64)
    return (
        np.concatenate(pts).astype(np.float64),
        np.concatenate(cfs).astype(np.float64),
        view_of,
        det_of.astype(np.int64),
    )


def epipolar_distances(
    points_px: np.ndarray,
    conf: np.ndarray,
    view_of: np.ndarray,
    F: np.ndarray,
    min_conf: float = 0.3,
    min_common: int = 5,
) -> np.ndarray:
    """Mean symmetric point-to-epipolar-line distance between every pair of items, all view pairs at once.

    For items i (view a) and k (view b) and joint j, with ``r = x_k^T F[a, b] x_i`` the term is
    ``|r| (1 / |l_b| + 1 / |l_a|) / 2``, the mean of the distance of ``x_k`` to the epipolar line
    ``l_b = F[a, b] x_i`` and of ``x_i`` to ``l_a = F[a, b]^T x_k`` (Hartley & Zisserman §11.4.3).
    Joints are weighted by ``conf_i * conf_k`` where both are at least ``min_conf`` (the product,
    unlike :func:`matching.epipolar.epipolar_distance_matrix`'s minimum, folds into the batched
    products; equal for equal confidences).

    Args:
        points_px: (N, J, 2) undistorted pixels of all items of a frame.
        conf: (N, J) joint confidences.
        view_of: (N,) int view index of each item, in [0, C).
        F: (C, C, 3, 3) fundamental matrices from :func:`stack_fundamentals`.
        min_conf: joints below this confidence are ignored.
        min_common: pairs with fewer joints confident in both get ``inf``.

    Returns:
        (N, N) symmetric distances, pixels: 0 on the diagonal, ``inf`` for pairs in one view and for
        unmatchable pairs.

    Raises:
        ShapeError: inconsistent shapes.
    """
    n, n_joints = conf.shape
    if points_px.shape != (n, n_joints, 2) or view_of.shape != (n,) or F.ndim != 4 or F.shape[2:] != (3, 3):
        raise ShapeError(
            f"expected (N, J, 2) points, (N, J) conf, (N,) view_of, (C, C, 3, 3) F; got "
            f"{points_px.shape}, {conf.shape}, {view_of.shape}, {F.shape}"
        )
    out = np.full((n, n), np.inf)
    if n == 0:
        return out
    n_views = F.shape[0]
    counts = np.bincount(view_of, minlength=n_views)
    width = int(counts.max())
    slot = np.arange(n) - np.concatenate([[0], np.cumsum(counts)[:-1]])[view_of]
    cw = np.where(conf >= min_conf, conf, 0.0)  # (N, J) joint weights
    # Padded per-view layout: item (view a, slot s) at [a, s]; padding has zero points and weights.
    h = np.zeros((n_views, width, n_joints, 3))
    h[view_of, slot] = np.concatenate([points_px, np.ones((n, n_joints, 1))], axis=-1)
    wp = np.zeros((n_views, width, n_joints))
    wp[view_of, slot] = cw
    # Epipolar lines of every item in every view, one batched matmul per source view:
    # lines[a, s, j, c] = F[a, c] @ h[a, s, j], scaled to unit normal (then l . x is a signed distance).
    Ft = F.transpose(0, 3, 1, 2).reshape(n_views, 3, n_views * 3)
    lines = (h.reshape(n_views, width * n_joints, 3) @ Ft).reshape(n_views, width, n_joints, n_views, 3)
    norm = np.hypot(lines[..., 0], lines[..., 1])
    scale = np.where(norm > 1e-12, wp[..., None] / np.maximum(norm, 1e-12), 0.0)  # weight folded in
    lines *= scale[..., None]
    # dist_w[a, s, c, p] = sum_j w_i w_k |lines[a, s, j, c] . h[c, p, j]|, batched over (target view, joint).
    A = lines.transpose(3, 2, 0, 1, 4).reshape(n_views, n_joints, n_views * width, 3)
    B = (h * wp[..., None]).transpose(0, 2, 3, 1)  # (C, J, 3, w)
    directed = np.abs(A @ B).sum(axis=1)  # (C_k, C_i * w, w)
    pos = view_of * width + slot
    directed = directed.transpose(1, 0, 2).reshape(n_views * width, n_views * width)[np.ix_(pos, pos)]
    wsum = cw @ cw.T
    n_common = (cw > 0).astype(np.float64)
    n_common = n_common @ n_common.T
    dist = 0.5 * (directed + directed.T) / np.maximum(wsum, 1e-12)
    ok = (n_common >= min_common) & (view_of[:, None] != view_of[None, :])
    out = np.where(ok, dist, np.inf)
    np.fill_diagonal(out, 0.0)
    return out


def geometric_affinity(
    dist_px: np.ndarray, view_of: np.ndarray, half_px: float | None = 30.0, steepness: float = 5.0
) -> np.ndarray:
    """Map epipolar distances to an affinity in [0, 1] by a logistic function (Dong et al. 2019, §3.1).

    ``A = 1 / (1 + exp(steepness * z))`` with ``z = (d - half_px) / half_px``: 0.5 at ``half_px``,
    0.993 at 0 for the default steepness. With ``half_px=None`` z is mvpose's per-frame
    standardisation ``(d - mean) / std`` over the finite cross-view distances (adapts to the image
    scale, but ranks within the frame: a frame where everyone matches gets middling affinities).

    Args:
        dist_px: (N, N) distances from :func:`epipolar_distances`, pixels (``inf``: unmatchable).
        view_of: (N,) int view of each item.
        half_px: distance of affinity 0.5, pixels; None for per-frame standardisation.
        steepness: slope of the logistic map (mvpose: 5).

    Returns:
        (N, N) symmetric affinity: 1 on the diagonal, 0 within a view and for ``inf`` distances.

    Raises:
        ValueError: ``half_px`` or ``steepness`` not positive.
    """
    if (half_px is not None and half_px <= 0) or steepness <= 0:
        raise ValueError(f"half_px and steepness must be positive; got {half_px}, {steepness}")
    finite = np.isfinite(dist_px) & (view_of[:, None] != view_of[None, :])
    d = np.where(finite, dist_px, 0.0)
    if half_px is None:
        vals = d[finite]
        center = float(vals.mean()) if vals.size else 0.0
        scale = float(vals.std()) if vals.size > 1 else 0.0
        scale = scale if scale > 1e-9 else 1.0
    else:
        center = scale = float(half_px)
    z = np.clip(steepness * (d - center) / scale, -50.0, 50.0)
    aff = np.where(finite, 1.0 / (1.0 + np.exp(z)), 0.0)
    np.fill_diagonal(aff, 1.0)
    return aff


def part_similarity(a: np.ndarray, b: np.ndarray, n_parts: int = 1, unseen: float = 0.5) -> np.ndarray:
    """Similarity of part-based descriptors: the mean, over the parts seen in both, of each part's
    cosine (Farenzena et al., SDALF, CVPR 2010, match body parts separately; for square-rooted
    histogram blocks the cosine is the Bhattacharyya coefficient).

    Args:
        a: (N, D) descriptors made of ``n_parts`` equal blocks; an all-zero block is an unseen part.
        b: (M, D) descriptors of the same layout.
        n_parts: number of blocks (1: the plain cosine of the whole vectors).
        unseen: the similarity of two descriptors with no seen part in common.

    Returns:
        (N, M) float64 similarities in [-1, 1] (in [0, 1] for non-negative descriptors).

    Raises:
        ShapeError: ``a`` and ``b`` are not 2-D with the same D, or D is not a multiple of ``n_parts``.

    Example:
        >>> x = np.zeros((2, 8)); x[0, [0, 4]] = 0.5 ** 0.5; x[1, 4] = 1.0  # person 1 misses part 0
        >>> part_similarity(x, x, n_parts=2).round(3).tolist()
        [[1.0, 1.0], [1.0, 1.0]]
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or n_parts < 1 or a.shape[1] % n_parts:
        raise ShapeError(f"a and b must be (N, D) and (M, D) with D a multiple of {n_parts}; got {a.shape}, {b.shape}")
    A = a.reshape(a.shape[0], n_parts, -1)
    B = b.reshape(b.shape[0], n_parts, -1)
    na, nb = np.linalg.norm(A, axis=-1), np.linalg.norm(B, axis=-1)  # (N, K), (M, K)
    A = A / np.where(na > 0, na, 1.0)[..., None]
    B = B / np.where(nb > 0, nb, 1.0)[..., None]
    cos = np.einsum("nkd,mkd->nmk", A, B)  # zero where either part is unseen
    common = ((na > 0)[:, None, :] & (nb > 0)[None, :, :]).sum(-1)
    return np.clip(np.where(common > 0, cos.sum(-1) / np.maximum(common, 1), unseen), -1.0, 1.0)


def appearance_affinity(
    descriptors: np.ndarray,
    known: np.ndarray,
    view_of: np.ndarray,
    cos_floor: float = -1.0,
    neutral: float = 0.5,
    n_parts: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """Appearance affinity from per-detection re-ID descriptors.

    ``A = clip((cos - cos_floor) / (1 - cos_floor), 0, 1)``: with the default floor -1 this is
    ``(1 + cos) / 2``; non-negative descriptors (colour histograms) use a floor near their typical
    cross-person cosine so that the map spreads over [0, 1].

    Args:
        descriptors: (N, D) descriptors (normalised here to unit L2 norm; rows of missing ones are ignored).
        known: (N,) bool, the item has a descriptor.
        view_of: (N,) int view of each item.
        cos_floor: cosine similarity mapped to 0, in [-1, 1).
        neutral: the value given to pairs where either descriptor is missing.
        n_parts: the descriptors are made of this many part blocks, compared part by part
            (:func:`part_similarity`; 1: the plain cosine). Two descriptors with no seen part in
            common are a pair of unknown appearance.

    Returns:
        ``(affinity, pair_known)``: (N, N) affinity in [0, 1] (1 on the diagonal, 0 within a view,
        ``neutral`` where unknown) and (N, N) bool, both descriptors present and views differ.

    Raises:
        ShapeError: inconsistent shapes. ValueError: ``cos_floor`` outside [-1, 1).
    """
    n = view_of.shape[0]
    if descriptors.ndim != 2 or descriptors.shape[0] != n or known.shape != (n,):
        raise ShapeError(
            f"expected (N, D) descriptors and (N,) known with N={n}; got {descriptors.shape}, {known.shape}"
        )
    if not -1.0 <= cos_floor < 1.0:
        raise ValueError(f"cos_floor must be in [-1, 1); got {cos_floor}")
    norm = np.linalg.norm(descriptors, axis=1)
    known = known & (norm > 1e-12)
    e = np.where(known[:, None], descriptors, 0.0)
    cos = part_similarity(e, e, n_parts, unseen=np.nan)
    aff = np.clip((np.nan_to_num(cos) - cos_floor) / (1.0 - cos_floor), 0.0, 1.0)
    cross = view_of[:, None] != view_of[None, :]
    pair_known = known[:, None] & known[None, :] & cross & ~np.isnan(cos)
    aff = np.where(pair_known, aff, np.where(cross, neutral, 0.0))
    np.fill_diagonal(aff, 1.0)
    return aff, pair_known


def combine_affinities(
    geometric: np.ndarray, appearance: np.ndarray | None, pair_known: np.ndarray | None, weight: float = 0.5
) -> np.ndarray:
    """Weighted geometric mean of geometric and appearance affinity (Dong et al. 2019, §3.1).

    ``A = G^(1 - weight) * App^weight`` where both are known, ``A = G`` elsewhere (a missing
    descriptor neither helps nor hurts). ``weight=0.5`` is mvpose's ``sqrt(G * App)``, 0 turns
    appearance off.

    Args:
        geometric: (N, N) geometric affinity in [0, 1].
        appearance: (N, N) appearance affinity in [0, 1], or None.
        pair_known: (N, N) bool, pairs whose appearance is known, or None (all known).
        weight: exponent of the appearance term, in [0, 1].

    Returns:
        (N, N) affinity in [0, 1].

    Raises:
        ValueError: ``weight`` outside [0, 1].
    """
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"weight must be in [0, 1]; got {weight}")
    if appearance is None or weight == 0.0:
        return geometric.copy()
    mixed = np.power(geometric, 1.0 - weight) * np.power(appearance, weight)
    return mixed if pair_known is None else np.where(pair_known, mixed, geometric)


def appearance_ratio(
    geometric: np.ndarray, appearance: np.ndarray, pair_known: np.ndarray, view_of: np.ndarray
) -> np.ndarray:
    """How much better a pair looks than its geometric competitors: appearance as a tie-breaker.

    For items i (view a) and k (view b), every other item k' of view b competes with k for i, in
    proportion to how well geometry accepts it next to k, ``c = min(1, G[i, k'] / G[i, k])``. A rival
    that looks more alike than k (``App[i, k'] > App[i, k]``) costs the factor
    ``1 - c (1 - App[i, k] / App[i, k'])``: from 1 (a rival geometry rules out) to the appearance
    ratio (a geometric tie). It is linear in c, so a pair whose appearance affinity is 0 (clipped at
    the floor) is not vetoed by a rival geometry all but excludes. ``R[i, k]`` is the smallest factor
    over the rivals of k for i and over the rivals of i (items i' of view a) for k. So ``R = 1`` when
    geometry leaves no rival (a person alone on their epipolar lines) or k looks best of its rivals,
    and ``R`` is the plain appearance ratio of two people geometry cannot tell apart (equal ``G``).
    Only ratios of one detection's similarities enter, never their absolute level, which for colour
    histograms varies with viewpoint and lighting more than between people (the ratio test of Lowe,
    "Distinctive Image Features from Scale-Invariant Keypoints", IJCV 2004, §7.1, restricted to
    geometric candidates).

    Args:
        geometric: (N, N) geometric affinity in [0, 1] (:func:`geometric_affinity`).
        appearance: (N, N) appearance affinity in [0, 1] (:func:`appearance_affinity`).
        pair_known: (N, N) bool, pairs whose appearance is known; unknown pairs neither compete nor are scored.
        view_of: (N,) int view of each item.

    Returns:
        (N, N) symmetric factor in [0, 1]: 1 on the diagonal, within a view and for unknown pairs.

    Raises:
        ShapeError: inconsistent shapes.

    Example:
        >>> g = np.array([[1, .9, .9], [.9, 1, 0], [.9, 0, 1]])  # item 0 (view 0) fits both items of view 1
        >>> app = np.array([[1, .8, .2], [.8, 1, 0], [.2, 0, 1]])
        >>> appearance_ratio(g, app, g > 0, np.array([0, 1, 1])).round(2).tolist()
        [[1.0, 1.0, 0.25], [1.0, 1.0, 1.0], [0.25, 1.0, 1.0]]
    """
    n = view_of.shape[0]
    if geometric.shape != (n, n) or appearance.shape != (n, n) or pair_known.shape != (n, n):
        raise ShapeError(
            f"expected (N, N) affinities and pair_known with N={n}; got {geometric.shape}, {appearance.shape}, "
            f"{pair_known.shape}"
        )
    out = np.ones((n, n))
    if n == 0:
        return out
    n_views = int(view_of.max()) + 1
    counts = np.bincount(view_of, minlength=n_views)
    width = int(counts.max())
    slot = np.arange(n) - np.concatenate([[0], np.cumsum(counts)[:-1]])[view_of]
    # Padded per-view layout: [i, c, s] is item i against the item in slot s of view c. Unknown
    # appearance and padding are 0, which no pair counts as a better-looking rival.
    app = np.zeros((n, n_views, width), dtype=np.float32)
    app[:, view_of, slot] = np.where(pair_known, appearance, 0.0)
    geo = np.zeros((n, n_views, width), dtype=np.float32)
    geo[:, view_of, slot] = geometric
    # [i, c, s, r]: rival r of the item in slot s of view c, seen from i (N * C * w * w entries):
    # penalty c * (1 - App_k / App_r) where positive, c = min(1, G_r / G_k); NaN/inf from 0/0, x/0 fall
    # out by fmin/fmax (a rival of appearance 0 never costs, a pair of geometric affinity 0 stays 0).
    with np.errstate(divide="ignore", invalid="ignore"):
        cost = np.divide(app[..., :, None], app[..., None, :])
        np.subtract(1.0, cost, out=cost)
        np.fmax(cost, 0.0, out=cost)
        weight = np.divide(geo[..., None, :], geo[..., :, None])
        np.fmin(weight, 1.0, out=weight)
        cost *= weight
    one_side = 1.0 - cost.max(axis=-1)[:, view_of, slot].astype(np.float64)  # (N, N): the rivals of k for i
    cross = view_of[:, None] != view_of[None, :]
    out = np.where(pair_known & cross, np.minimum(one_side, one_side.T), 1.0)
    return out


@dataclass(frozen=True, slots=True)
class AffinityConfig:
    """Settings of :func:`frame_affinity`.

    Attributes:
        min_conf: joints below this confidence are ignored.
        min_common: fewest joints confident in both detections for a geometric affinity.
        half_px: epipolar distance of geometric affinity 0.5, pixels; None: mvpose's per-frame standardisation.
        steepness: slope of the logistic map.
        use_appearance: combine the appearance term when descriptors are given (off for uniforms).
        appearance_weight: exponent of the appearance term (see ``combination``), in [0, 1].
        cos_floor: cosine similarity of appearance affinity 0.
        n_parts: part blocks of the descriptors (:func:`part_similarity`; 1: one whole vector).
        combination: how appearance enters, one of :data:`COMBINATIONS`: ``"ratio"`` (appearance
            breaks ties of geometry: ``A = G * R ** appearance_weight`` with R from
            :func:`appearance_ratio`, the weighted geometric mean of G and ``G * R``) or
            ``"geometric_mean"`` (Dong et al.'s ``G ** (1 - w) * App ** w``, :func:`combine_affinities`).

    Raises:
        ValueError: unknown ``combination``.
    """

    min_conf: float = 0.3
    min_common: int = 5
    half_px: float | None = 30.0
    steepness: float = 5.0
    use_appearance: bool = True
    appearance_weight: float = 0.5
    cos_floor: float = -1.0
    n_parts: int = 1
    combination: str = "ratio"

    def __post_init__(self) -> None:
        if self.combination not in COMBINATIONS:
            raise ValueError(f"combination must be one of {', '.join(COMBINATIONS)}; got {self.combination!r}")


def frame_affinity(
    points_px: list[np.ndarray],
    conf: list[np.ndarray],
    F: np.ndarray,
    descriptors: list[np.ndarray | None] | None = None,
    config: AffinityConfig | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Affinity between all detections of one frame.

    Args:
        points_px: per view c, (P_c, J, 2) undistorted pixels.
        conf: per view c, (P_c, J) joint confidences.
        F: (C, C, 3, 3) fundamental matrices from :func:`stack_fundamentals`.
        descriptors: per view c, (P_c, D) descriptors or None (that view has none); None: no appearance.
        config: the settings (defaults if None).

    Returns:
        ``(affinity, view_of, det_of)``: (N, N) affinity in [0, 1], (N,) view and (N,) detection
        index of each item (views in order, detections in order within a view).

    Raises:
        ShapeError: the views do not match ``F`` or each other.
    """
    cfg = config or AffinityConfig()
    if len(points_px) != F.shape[0]:
        raise ShapeError(f"expected {F.shape[0]} views; got {len(points_px)}")
    pts, cf, view_of, det_of = stack_views(points_px, conf)
    dist = epipolar_distances(pts, cf, view_of, F, cfg.min_conf, cfg.min_common)
    aff = geometric_affinity(dist, view_of, cfg.half_px, cfg.steepness)
    if descriptors is not None and cfg.use_appearance and cfg.appearance_weight > 0 and view_of.size:
        if len(descriptors) != len(points_px):
            raise ShapeError(f"descriptors must have one entry per view; got {len(descriptors)}")
        dims = {d.shape[1] for d, p in zip(descriptors, points_px, strict=True) if d is not None and p.shape[0]}
        if len(dims) > 1:
            raise ShapeError(f"descriptor sizes differ between views: {sorted(dims)}")
        if dims:
            dim = dims.pop()
            desc = np.zeros((view_of.size, dim))
            known = np.zeros(view_of.size, dtype=bool)
            for c, d in enumerate(descriptors):
                if d is None or points_px[c].shape[0] == 0:
                    continue
                if d.shape != (points_px[c].shape[0], dim):
                    raise ShapeError(f"view {c}: descriptors must be ({points_px[c].shape[0]}, {dim}); got {d.shape}")
                rows = view_of == c
                desc[rows] = d
                known[rows] = True
            app, pair_known = appearance_affinity(desc, known, view_of, cfg.cos_floor, n_parts=cfg.n_parts)
            if cfg.combination == "ratio":
                aff = aff * appearance_ratio(aff, app, pair_known, view_of) ** cfg.appearance_weight
            else:
                aff = combine_affinities(aff, app, pair_known, cfg.appearance_weight)
    return aff, view_of, det_of
