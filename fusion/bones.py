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
joint are correlated through it), which is exact for the linearised constraints (a 17 x 17 inverse
per person for COCO-17).

The per-frame work (lengths, sample buffers, medians, the constraint) is plain loops compiled by
numba (:mod:`core.jit`), one call per method: at a few people and 17 limbs numpy's per-operation
dispatch, not the arithmetic, set its cost.
"""

from __future__ import annotations

import numpy as np

from core.errors import ShapeError
from core.jit import kernel

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
        self._a, self._b = np.ascontiguousarray(limbs[:, 0]), np.ascontiguousarray(limbs[:, 1])

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
        T = points.shape[0]
        lengths, ok = np.empty((T, self.n_limbs)), np.empty((T, self.n_limbs), bool)
        _measure(_f64(points), np.ascontiguousarray(valid, dtype=bool), self._a, self._b, lengths, ok)
        return lengths, ok

    def push(self, buf: np.ndarray, count: np.ndarray, lengths: np.ndarray, ok: np.ndarray) -> None:
        """Add one sample per (person, limb) where ``ok``, overwriting the oldest (in place).

        Args:
            buf: (T, L, window) sample buffers (modified).
            count: (T, L) sample counts (modified).
            lengths: (T, L) new lengths, metres.
            ok: (T, L) bool, samples to add.
        """
        b, n = _f64(buf), np.ascontiguousarray(count, dtype=np.int64)
        _push(b, n, _f64(lengths), np.ascontiguousarray(ok, dtype=bool), self.window)
        if b is not buf:
            buf[...] = b
        if n is not count:
            count[...] = n

    def lengths(self, buf: np.ndarray, count: np.ndarray) -> np.ndarray:
        """(T, L) median of each buffer, metres; NaN for limbs with fewer than ``min_samples``.

        The median of the ``n = min(count, window)`` samples: the mean of the buffer's order statistics
        ``(n - 1) // 2`` and ``n // 2`` with NaN sorted last (a compiled selection, :mod:`core.jit`).
        """
        out = np.empty(count.shape)
        _medians(_f64(buf), np.ascontiguousarray(count, dtype=np.int64), self.window, max(self.min_samples, 1), out)
        return out

    def constrain(self, x: np.ndarray, P: np.ndarray, lengths: np.ndarray, active: np.ndarray) -> None:
        """Apply every ready limb length as a pseudo-measurement to the joints' filters (in place).

        All limbs of a person form one stacked measurement ``h(x) = (|x_b - x_a|)_limbs`` (an extended
        Kalman update linearised at the current estimate, Simon 2010 §2.3): ``S = H P H^T + r I`` over
        the person's limbs (limbs sharing a joint are correlated through it), ``x += P H^T S^-1 y`` and
        each joint's ``P_j -= (P H^T)_j S^-1 (P H^T)_j^T``, the joint's diagonal block of the updated
        covariance (the cross-covariances between joints are not kept).

        A compiled loop over the people (:mod:`core.jit`): only the limbs that can be used enter ``S``
        (a skipped limb's row of ``H`` is zero), inverted by Gauss-Jordan elimination with partial pivoting.

        Args:
            x: (T, J, 6) joint states [x, y, z, vx, vy, vz], metres and metres/second (modified).
            P: (T, J, 6, 6) their covariances (modified).
            lengths: (T, L) estimated lengths, metres; NaN skips a limb.
            active: (T, J) bool, joints whose filter is initialised.

        Raises:
            numpy.linalg.LinAlgError: a person's ``S`` is singular.
        """
        if self.std_m <= 0 or x.shape[0] == 0:
            return
        xc, Pc = _f64(x), _f64(P)
        done = _constrain(xc, Pc, _f64(lengths), np.ascontiguousarray(active, dtype=bool), self._a, self._b,
                          self.std_m**2)  # fmt: skip
        if not done:
            raise np.linalg.LinAlgError("Singular matrix")
        if xc is not x:
            x[...] = xc
        if Pc is not P:
            P[...] = Pc


def _f64(a: np.ndarray) -> np.ndarray:
    """``a`` as a C-contiguous float64 array (a copy only where needed): one kernel signature."""
    return np.ascontiguousarray(a, dtype=np.float64)


@kernel
def _measure(
    points: np.ndarray, valid: np.ndarray, a: np.ndarray, b: np.ndarray, lengths: np.ndarray, ok: np.ndarray
) -> None:
    """:meth:`BoneModel.measure` into ``lengths`` and ``ok`` (T, L)."""
    for t in range(points.shape[0]):
        for limb in range(a.shape[0]):
            ja, jb = a[limb], b[limb]
            dx = points[t, jb, 0] - points[t, ja, 0]
            dy = points[t, jb, 1] - points[t, ja, 1]
            dz = points[t, jb, 2] - points[t, ja, 2]
            lengths[t, limb] = np.sqrt(dx * dx + dy * dy + dz * dz)
            ok[t, limb] = valid[t, ja] and valid[t, jb]


@kernel
def _push(buf: np.ndarray, count: np.ndarray, lengths: np.ndarray, ok: np.ndarray, window: int) -> None:
    """:meth:`BoneModel.push` (in place)."""
    for t in range(buf.shape[0]):
        for limb in range(buf.shape[1]):
            if ok[t, limb]:
                buf[t, limb, count[t, limb] % window] = lengths[t, limb]
                count[t, limb] += 1


@kernel
def _select(a: np.ndarray, n: int, k: int) -> float:
    """The k-th smallest of ``a[:n]`` (no NaN), by Hoare's selection: ``a[:n]`` is rearranged so that
    ``a[k]`` is that value and ``a[:k]`` holds the k smaller ones (Hoare 1961, "Algorithm 65: find")."""
    lo, hi = 0, n - 1
    while lo < hi:
        pivot = a[(lo + hi) // 2]
        i, j = lo, hi
        while i <= j:
            while a[i] < pivot:
                i += 1
            while a[j] > pivot:
                j -= 1
            if i <= j:
                a[i], a[j] = a[j], a[i]
                i += 1
                j -= 1
        if k <= j:
            hi = j
        elif k >= i:
            lo = i
        else:
            break
    return a[k]


@kernel
def _medians(buf: np.ndarray, count: np.ndarray, window: int, min_samples: int, out: np.ndarray) -> None:
    """:meth:`BoneModel.lengths` into ``out`` (T, L): the mean of the order statistics ``(n - 1) // 2``
    and ``n // 2`` of each buffer with NaN last, ``n = min(count, window)``; NaN below ``min_samples``."""
    vals = np.empty(buf.shape[2])
    for t in range(buf.shape[0]):
        for limb in range(buf.shape[1]):
            n = min(count[t, limb], window)
            if n < min_samples:
                out[t, limb] = np.nan
                continue
            m = 0
            for s in range(buf.shape[2]):
                v = buf[t, limb, s]
                if v == v:
                    vals[m] = v
                    m += 1
            i_hi = n // 2
            i_lo = max(n - 1, 0) // 2
            if i_hi >= m:  # a NaN among the two
                out[t, limb] = np.nan
                continue
            hi = _select(vals, m, i_hi)
            lo = hi
            if i_lo < i_hi:  # the largest of the i_hi smaller ones
                lo = vals[0]
                for s in range(1, i_hi):
                    if vals[s] > lo:
                        lo = vals[s]
            out[t, limb] = 0.5 * (lo + hi)


@kernel
def _constrain(
    x: np.ndarray, P: np.ndarray, lengths: np.ndarray, active: np.ndarray, a: np.ndarray, b: np.ndarray, r: float
) -> bool:
    """:meth:`BoneModel.constrain` in place; False when some person's ``S`` is singular."""
    T, J = active.shape
    L = a.shape[0]
    u = np.empty((L, 3))
    y = np.empty(L)
    use = np.empty(L, np.int64)  # the usable limbs
    pa = np.empty((L, 6))  # (P H^T) at each usable limb's first and second joint
    pb = np.empty((L, 6))
    S = np.empty((L, L))
    inv = np.empty((L, L))
    w = np.empty(L)
    dx = np.empty(6)
    vec = np.empty((2 * L, 6))  # one joint's nonzero columns of P H^T, and their rows of S^-1
    col = np.empty(2 * L, np.int64)
    gain = np.empty((6, 2 * L))
    for t in range(T):
        n = 0
        for limb in range(L):
            ja, jb = a[limb], b[limb]
            d0 = x[t, jb, 0] - x[t, ja, 0]
            d1 = x[t, jb, 1] - x[t, ja, 1]
            d2 = x[t, jb, 2] - x[t, ja, 2]
            norm = np.sqrt(d0 * d0 + d1 * d1 + d2 * d2)
            if not (np.isfinite(lengths[t, limb]) and active[t, ja] and active[t, jb] and norm > 1e-6):
                continue
            inv_norm = 1.0 / norm
            u[n, 0], u[n, 1], u[n, 2] = d0 * inv_norm, d1 * inv_norm, d2 * inv_norm
            y[n] = lengths[t, limb] - norm
            use[n] = limb
            for i in range(6):  # P_a (-u), P_b u
                pa[n, i] = -(P[t, ja, i, 0] * u[n, 0] + P[t, ja, i, 1] * u[n, 1] + P[t, ja, i, 2] * u[n, 2])
                pb[n, i] = P[t, jb, i, 0] * u[n, 0] + P[t, jb, i, 1] * u[n, 1] + P[t, jb, i, 2] * u[n, 2]
            n += 1
        if n == 0:
            continue
        # S = H P H^T + r I: limbs l and m meet where they share a joint.
        for i in range(n):
            ia, ib = a[use[i]], b[use[i]]
            for k in range(n):
                ka, kb = a[use[k]], b[use[k]]
                s = r if i == k else 0.0
                if ia == ka:
                    s -= u[i, 0] * pa[k, 0] + u[i, 1] * pa[k, 1] + u[i, 2] * pa[k, 2]
                if ia == kb:
                    s -= u[i, 0] * pb[k, 0] + u[i, 1] * pb[k, 1] + u[i, 2] * pb[k, 2]
                if ib == ka:
                    s += u[i, 0] * pa[k, 0] + u[i, 1] * pa[k, 1] + u[i, 2] * pa[k, 2]
                if ib == kb:
                    s += u[i, 0] * pb[k, 0] + u[i, 1] * pb[k, 1] + u[i, 2] * pb[k, 2]
                S[i, k] = s
        # S^-1 by Gauss-Jordan elimination with partial pivoting (as LAPACK's LU inverse, to rounding).
        for i in range(n):
            for k in range(n):
                inv[i, k] = 1.0 if i == k else 0.0
        for c in range(n):
            p = c
            for i in range(c + 1, n):
                if abs(S[i, c]) > abs(S[p, c]):
                    p = i
            if S[p, c] == 0.0:
                return False
            if p != c:
                for k in range(n):
                    S[c, k], S[p, k] = S[p, k], S[c, k]
                    inv[c, k], inv[p, k] = inv[p, k], inv[c, k]
            f = 1.0 / S[c, c]
            for k in range(n):
                S[c, k] *= f
                inv[c, k] *= f
            for i in range(n):
                if i != c and S[i, c] != 0.0:
                    f = S[i, c]
                    for k in range(n):
                        S[i, k] -= f * S[c, k]
                        inv[i, k] -= f * inv[c, k]
        for i in range(n):
            s = 0.0
            for k in range(n):
                s += inv[i, k] * y[k]
            w[i] = s
        # Each joint: x_j += (P H^T)_j S^-1 y and P_j -= (P H^T)_j S^-1 (P H^T)_j^T over its limbs.
        for j in range(J):
            m = 0
            for i in range(n):
                if a[use[i]] == j:
                    vec[m] = pa[i]
                    col[m] = i
                    m += 1
                if b[use[i]] == j:
                    vec[m] = pb[i]
                    col[m] = i
                    m += 1
            if m == 0:
                continue
            for e in range(6):
                s = 0.0
                for i in range(m):
                    s += vec[i, e] * w[col[i]]
                dx[e] = s
            for e in range(6):
                x[t, j, e] += dx[e]
            for e in range(6):  # ((P H^T)_j S^-1)
                for i in range(m):
                    s = 0.0
                    for k in range(m):
                        s += vec[k, e] * inv[col[k], col[i]]
                    gain[e, i] = s
            for e in range(6):
                for f in range(6):
                    s = 0.0
                    for i in range(m):
                        s += gain[e, i] * vec[i, f]
                    P[t, j, e, f] -= s
    return True
