"""Per-person bone lengths: a running robust estimate, and a soft length constraint on a filter.

A person's bones keep their length, but per-frame triangulations of noisy 2D joints do not (the
demo's raw forearms and shins vary by up to 10-19 cm). :class:`BoneModel` keeps, for every tracked
person and limb of the skeleton, the last ``window`` lengths measured on the frame's triangulated
pose and takes their median (a robust running estimate: a minority of wrong triangulations moves it
little). Once a limb has ``min_samples`` of them, its length enters the joints' filters as a
pseudo-measurement ``|x_b - x_a| = L`` with standard deviation ``std_m``, applied by an extended
Kalman update linearised at the current estimate (the "pseudo-measurement" method of constrained
Kalman filtering; Simon 2010, *Kalman filtering with state constraints: a survey of linear and
nonlinear algorithms*, IET Control Theory & Applications 4(8), §2.3 and §3). ``std_m`` -> 0 is a
hard constraint (the estimate projection of Simon & Chia 2002); a larger value a softer one.

Convention: both joints of a limb move, each by its own share of the covariance along the bone
(its gain), so a well-observed joint stays and an uncertain one follows it. The joints' filters are
independent, so the cross-covariance such an update creates between two joints is not kept (a
standard approximation). All limbs of a person enter as one stacked measurement (limbs sharing a
joint are correlated through it), which is exact for the linearised constraints and takes a few
array operations per frame for everyone (a 17 x 17 inverse per person for COCO-17).
"""

from __future__ import annotations

import numpy as np

from core.errors import ShapeError

__all__ = ["BoneModel"]


class BoneModel:
    """Running robust bone lengths per person, and the soft bone-length constraint.

    Args:
        limbs: (L, 2) int joint index pairs (parent, child), e.g. ``skeleton.limbs``.
        window: samples kept per person and limb (the median is over these).
        min_samples: a limb's length is used once it has this many samples.
        std_m: standard deviation of the length pseudo-measurement, metres; 0 turns the constraint
            off (lengths are still estimated).

    Raises:
        ShapeError: ``limbs`` is not (L, 2).

    Example:
        >>> m = BoneModel(np.array([[0, 1], [1, 2]]), window=4, min_samples=2, std_m=0.01)
        >>> buf, n = m.empty(1)
        >>> for length in (0.30, 0.31, 0.90):  # one outlier
        ...     m.push(buf, n, np.array([[length, 0.2]]), np.array([[True, True]]))
        >>> np.round(m.lengths(buf, n), 3).tolist()
        [[0.31, 0.2]]
    """

    def __init__(self, limbs: np.ndarray, window: int = 120, min_samples: int = 10, std_m: float = 0.01):
        limbs = np.asarray(limbs, dtype=np.int64)
        if limbs.ndim != 2 or limbs.shape[1] != 2:
            raise ShapeError(f"limbs must be (L, 2) joint index pairs; got {limbs.shape}")
        self.limbs = limbs
        self.window = int(window)
        self.min_samples = int(min_samples)
        self.std_m = float(std_m)
        self._a, self._b = limbs[:, 0], limbs[:, 1]
        self._r_eye = self.std_m**2 * np.eye(len(limbs))

    @property
    def n_limbs(self) -> int:
        """Number of limbs L."""
        return self.limbs.shape[0]

    def empty(self, n_tracks: int) -> tuple[np.ndarray, np.ndarray]:
        """Sample buffers for ``n_tracks`` new people.

        Returns:
            buf: (T, L, window) lengths, metres (NaN where not filled yet).
            count: (T, L) int64 samples written so far (may exceed ``window``).
        """
        return np.full((n_tracks, self.n_limbs, self.window), np.nan), np.zeros((n_tracks, self.n_limbs), np.int64)

    def measure(self, points: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Lengths of every limb of some poses.

        Args:
            points: (T, J, 3) joint positions, metres.
            valid: (T, J) bool, joints that may be read.

        Returns:
            lengths: (T, L) metres; ok: (T, L) bool, both joints valid.
        """
        a, b = self.limbs[:, 0], self.limbs[:, 1]
        lengths = np.linalg.norm(points[:, b] - points[:, a], axis=-1)
        return lengths, valid[:, a] & valid[:, b]

    def push(self, buf: np.ndarray, count: np.ndarray, lengths: np.ndarray, ok: np.ndarray) -> None:
        """Add one sample per (person, limb) where ``ok``, overwriting the oldest (in place).

        Args:
            buf: (T, L, window) sample buffers (modified).
            count: (T, L) sample counts (modified).
            lengths: (T, L) new lengths, metres.
            ok: (T, L) bool, samples to add.
        """
        t, limb = np.nonzero(ok)
        buf[t, limb, count[t, limb] % self.window] = lengths[t, limb]
        count[t, limb] += 1

    def lengths(self, buf: np.ndarray, count: np.ndarray) -> np.ndarray:
        """(T, L) median of each buffer, metres; NaN for limbs with fewer than ``min_samples``."""
        n = np.minimum(count, self.window)
        srt = np.sort(buf, axis=-1)  # NaN sort last
        lo = np.take_along_axis(srt, np.maximum(n - 1, 0)[..., None] // 2, axis=-1)[..., 0]
        hi = np.take_along_axis(srt, (n // 2)[..., None], axis=-1)[..., 0]
        return np.where(n >= max(self.min_samples, 1), 0.5 * (lo + hi), np.nan)

    def constrain(self, x: np.ndarray, P: np.ndarray, lengths: np.ndarray, active: np.ndarray) -> None:
        """Apply every ready limb length as a pseudo-measurement to the joints' filters (in place).

        All limbs of a person form one stacked measurement ``h(x) = (|x_b - x_a|)_limbs`` (an extended
        Kalman update linearised at the current estimate, Simon 2010 §2.3): ``S = H P H^T + r I`` over
        the person's limbs (limbs sharing a joint are correlated through it), ``x += P H^T S^-1 y`` and
        each joint's ``P_j -= (P H^T)_j S^-1 (P H^T)_j^T``, the joint's diagonal block of the updated
        covariance (the cross-covariances between joints are not kept).

        Args:
            x: (T, J, 6) joint states [x, y, z, vx, vy, vz], metres and metres/second (modified).
            P: (T, J, 6, 6) their covariances (modified).
            lengths: (T, L) estimated lengths, metres; NaN skips a limb.
            active: (T, J) bool, joints whose filter is initialised.
        """
        if self.std_m <= 0 or x.shape[0] == 0:
            return
        T, J = active.shape
        a, b = self._a, self._b
        d = x[:, b, :3] - x[:, a, :3]  # (T, L, 3) from first to second joint
        norm = np.sqrt(np.einsum("tli,tli->tl", d, d))
        ok = np.isfinite(lengths) & active[:, a] & active[:, b] & (norm > 1e-6)  # (T, L)
        if not ok.any():
            return
        u = d * (ok / np.where(ok, norm, 1.0))[..., None]  # unit vectors, 0 for skipped limbs
        G = np.zeros((T, J, 3, self.n_limbs))  # H restricted to each joint's position, transposed
        cols = np.arange(self.n_limbs)
        G[:, a, :, cols] = -u.transpose(1, 0, 2)
        G[:, b, :, cols] += u.transpose(1, 0, 2)
        PG = P[..., :3] @ G  # (T, J, 6, L): P H^T per joint
        # S = H P H^T + r I = sum over joints of G_j^T (P H^T)_j,pos (a matmul over the (J * 3) axis).
        PG3 = np.ascontiguousarray(PG[:, :, :3]).reshape(T, 3 * J, -1)
        S = np.swapaxes(G.reshape(T, 3 * J, -1), 1, 2) @ PG3 + self._r_eye
        y = np.where(ok, lengths - norm, 0.0)
        S_inv = np.linalg.inv(S)
        x += (PG @ (S_inv @ y[..., None])[:, None])[..., 0]
        P -= PG @ S_inv[:, None] @ np.swapaxes(PG, -1, -2)
