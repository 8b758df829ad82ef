"""The compiled half of :mod:`adjoint_sym.adjoint.fast`: SciPy's RK45 forward and backward in numba.

Kept apart from :mod:`adjoint_sym.adjoint.fast` because numba's disk cache is keyed on this
file: editing the public module (its docstrings, its kernel translation) must not cost
the integrator's recompilation (about 7 s of CPU).

Everything here runs in nopython mode on flat float64 arrays.  The system's kernels
arrive as first-class function pointers with the C signature
``void kernel(double *out, const double *in, void *user_data)`` (SymEngine's LLVM
callbacks), reading one input vector ``[t, h (n), a (n), theta (p)]``.  Floating point
may be reassociated and contracted into fused multiply-adds (``fastmath={"reassoc",
"contract"}``: round-off-level differences from SciPy, never NaN or inf assumptions).

Functions
---------
``forward``    RK45 from ``t0`` to ``t1`` with dense output; states and ``f`` at the
               observation times.
``segment``    ``[a, a_theta, a_t]`` across one observation segment, backward, ``h(t)``
               from the dense output (the sweep and its jumps run in Python).
"""

from __future__ import annotations

import ctypes

import numpy as np
from scipy.integrate import RK45

try:  # optional: the module imports without numba; adjoint_sym.adjoint.fast says what to install
    import numba
    import numba.experimental.function_type  # registers the typing of first-class function pointers
    from numba import types as _nt
    from numba.extending import intrinsic as _intrinsic
except ImportError:  # pragma: no cover - exercised only where numba is absent
    numba = None

#: Status codes of the compiled integrator.
OK, TOO_SMALL, STEP_LIMIT, NON_FINITE, STIFF = 0, 1, 2, 3, 4

#: Hairer's stiffness test for Dormand-Prince (Hairer and Wanner, Solving Ordinary
#: Differential Equations II, section IV.2, as in DOPRI5): ``h |lambda|``, estimated from
#: the last two stages (both at ``t + h``) as ``h |K7 - K6| / |y7 - y6|``, beyond the
#: stability boundary of the method (3.25 on the negative real axis) on this many
#: accepted steps in a row (a run broken by six steps inside it starts over) means that
#: stability, not accuracy, sets the step size.
STIFF_RUN, STIFF_BOUNDARY, STIFF_BREAK = 15, 3.25, 6

if numba is not None:
    _KERNEL_SIG = _nt.void(_nt.CPointer(_nt.float64), _nt.CPointer(_nt.float64), _nt.voidptr)

    class _Callback(_nt.WrapperAddressProtocol):
        """A SymEngine LLVM function as a numba first-class function, plus its user data."""

        def __init__(self, address: int, data: int) -> None:
            self.address, self.data = address, data

        def __wrapper_address__(self) -> int:
            return self.address

        def signature(self):
            return _KERNEL_SIG

    def callback(fn) -> tuple:
        """``(pointer, user_data)`` of a SymEngine ``LLVMDouble`` for the compiled functions."""
        cfunc, data = fn.as_ctypes()
        return _Callback(ctypes.cast(cfunc, ctypes.c_void_p).value, data.value), data.value

    @_intrinsic
    def _voidptr(typingctx, address):
        """Reinterpret an integer address as ``void*`` (the kernels' user data)."""

        def codegen(context, builder, signature, args):
            return builder.inttoptr(args[0], context.get_value_type(_nt.voidptr))

        return _nt.voidptr(address), codegen

    _jit = numba.njit(cache=True, nogil=True, error_model="numpy", fastmath={"reassoc", "contract"})
else:  # pragma: no cover

    def callback(fn) -> tuple:
        raise ImportError("numba is not installed")

    def _voidptr(address):
        return address

    def _jit(fn):
        return fn


# Dormand-Prince 5(4) exactly as SciPy's RK45: nodes, matrix, weights, error, dense output.
_C = np.ascontiguousarray(RK45.C, dtype=np.float64)
_A = np.ascontiguousarray(RK45.A, dtype=np.float64)
_B = np.ascontiguousarray(RK45.B, dtype=np.float64)
_E = np.ascontiguousarray(RK45.E, dtype=np.float64)
_P = np.ascontiguousarray(RK45.P, dtype=np.float64)
_SAFETY, _MIN_FACTOR, _MAX_FACTOR = 0.9, 0.2, 10.0  # SciPy's step-size control constants
_ERROR_EXPONENT = -1.0 / (RK45.error_estimator_order + 1)


@_jit
def _dense(ts, ys, qs, m, t, out):
    """``h(t)`` from the first ``m`` steps' quartic interpolants (``ts`` monotone)."""
    direction = 1.0 if ts[m] >= ts[0] else -1.0
    s = t * direction
    lo, hi = 0, m + 1  # first index with ts * direction >= s, as OdeSolution searches
    while lo < hi:
        mid = (lo + hi) // 2
        if ts[mid] * direction < s:
            lo = mid + 1
        else:
            hi = mid
    k = min(max(lo - 1, 0), m - 1)
    step = ts[k + 1] - ts[k]
    x = (t - ts[k]) / step
    n = out.size
    for i in range(n):
        acc = 0.0
        power = 1.0
        for j in range(qs.shape[2]):
            power *= x
            acc += qs[k, i, j] * power
        out[i] = ys[k, i] + step * acc


@_jit
def _rhs(kernel, data, buf, mode, n, ts, ys, qs, m, t, y, out, scratch):
    """Mode 0: ``f(t, y)``; mode 1: ``vjp(t, h(t), y[:n])`` with ``h`` dense (rate ``-vjp``)."""
    buf[0] = t
    if mode == 0:
        for i in range(n):
            buf[1 + i] = y[i]
        kernel(out.ctypes, buf.ctypes, _voidptr(data))
    else:
        _dense(ts, ys, qs, m, t, scratch)
        for i in range(n):
            buf[1 + i] = scratch[i]
            buf[1 + n + i] = y[i]
        kernel(out.ctypes, buf.ctypes, _voidptr(data))  # the caller applies the minus sign


@_jit
def _copy(dst, src):
    """``dst[:src.size] = src`` for flat arrays, as a loop (slice assignment compiles slowly)."""
    for i in range(src.size):
        dst[i] = src[i]


@_jit
def _rms(x, scale):
    """RMS of ``x[:scale.size] / scale`` (``x`` may carry quadrature payload beyond)."""
    acc = 0.0
    for i in range(scale.size):
        r = x[i] / scale[i]
        acc += r * r
    return np.sqrt(acc / scale.size)


@_jit
def _initial_step(kernel, data, buf, mode, n, ts, ys, qs, m, t0, t1, y, f0, sign, rtol, atol, scratch):
    """SciPy's ``select_initial_step`` (error estimator order 4); one more evaluation."""
    size = y.size
    direction = 1.0 if t1 > t0 else -1.0
    interval = abs(t1 - t0)
    scale = np.empty(size)
    for i in range(size):
        scale[i] = atol + abs(y[i]) * rtol
    d0 = _rms(y, scale)
    d1 = _rms(f0, scale)
    h0 = 1e-6 if (d0 < 1e-5 or d1 < 1e-5) else 0.01 * d0 / d1
    h0 = min(h0, interval)
    y1 = np.empty(size)
    for i in range(size):
        y1[i] = y[i] + (h0 * direction * sign) * f0[i]
    f1 = np.empty(f0.size)
    _rhs(kernel, data, buf, mode, n, ts, ys, qs, m, t0 + h0 * direction, y1, f1, scratch)
    for i in range(size):
        f1[i] -= f0[i]
    d2 = _rms(f1, scale) / h0
    if d1 <= 1e-15 and d2 <= 1e-15:
        h1 = max(1e-6, h0 * 1e-3)
    else:
        h1 = (0.01 / max(d1, d2)) ** (-_ERROR_EXPONENT)
    return min(100 * h0, h1, interval)


@_jit
def _stages(kernel, data, buf, mode, n, ts, ys, qs, m, t, h, hk, y, K, stage, y_new, scratch):
    """Stages 2-7 of Dormand-Prince from ``K[0]``, one fused pass over the state each
    (the tableau entries are compile-time constants; zeros fold away); ``hk = h * sign``."""
    size = y.size
    K0, K1, K2, K3, K4, K5, K6 = K[0], K[1], K[2], K[3], K[4], K[5], K[6]
    for i in range(size):
        stage[i] = y[i] + hk * (_A[1, 0] * K0[i])
    _rhs(kernel, data, buf, mode, n, ts, ys, qs, m, t + _C[1] * h, stage, K1, scratch)
    for i in range(size):
        stage[i] = y[i] + hk * (_A[2, 0] * K0[i] + _A[2, 1] * K1[i])
    _rhs(kernel, data, buf, mode, n, ts, ys, qs, m, t + _C[2] * h, stage, K2, scratch)
    for i in range(size):
        stage[i] = y[i] + hk * (_A[3, 0] * K0[i] + _A[3, 1] * K1[i] + _A[3, 2] * K2[i])
    _rhs(kernel, data, buf, mode, n, ts, ys, qs, m, t + _C[3] * h, stage, K3, scratch)
    for i in range(size):
        stage[i] = y[i] + hk * (_A[4, 0] * K0[i] + _A[4, 1] * K1[i] + _A[4, 2] * K2[i] + _A[4, 3] * K3[i])
    _rhs(kernel, data, buf, mode, n, ts, ys, qs, m, t + _C[4] * h, stage, K4, scratch)
    for i in range(size):
        stage[i] = y[i] + hk * (
            _A[5, 0] * K0[i] + _A[5, 1] * K1[i] + _A[5, 2] * K2[i] + _A[5, 3] * K3[i] + _A[5, 4] * K4[i]
        )
    _rhs(kernel, data, buf, mode, n, ts, ys, qs, m, t + _C[5] * h, stage, K5, scratch)
    for i in range(size):
        y_new[i] = y[i] + hk * (
            _B[0] * K0[i] + _B[1] * K1[i] + _B[2] * K2[i] + _B[3] * K3[i] + _B[4] * K4[i] + _B[5] * K5[i]
        )
    _rhs(kernel, data, buf, mode, n, ts, ys, qs, m, t + h, y_new, K6, scratch)


@_jit
def _error_norm(K, hk, y, y_new, err, scale, rtol, atol):
    """RMS of the embedded error over ``atol + rtol * max(|y|, |y_new|)``; NaN if ``y_new`` is not finite."""
    K0, K1, K2, K3, K4, K5, K6 = K[0], K[1], K[2], K[3], K[4], K[5], K[6]
    finite = 0.0
    for i in range(y.size):
        err[i] = hk * (
            _E[0] * K0[i]
            + _E[1] * K1[i]
            + _E[2] * K2[i]
            + _E[3] * K3[i]
            + _E[4] * K4[i]
            + _E[5] * K5[i]
            + _E[6] * K6[i]
        )
        scale[i] = atol + max(abs(y[i]), abs(y_new[i])) * rtol
        finite += y_new[i] * 0.0  # NaN once any entry is NaN or inf
    for j in range(K.shape[0]):  # the quadrature payload beyond the stepped state, if any
        for i in range(y.size, K.shape[1]):
            finite += K[j, i] * 0.0
    if finite != 0.0:
        return np.nan
    return _rms(err, scale)


@_jit
def _record(rec_t, rec_y, rec_q, steps, t_new, y_new, K, sign):
    """Store step ``steps``'s end point and quartic dense coefficients, growing the arrays."""
    size = y_new.size
    if steps + 1 >= rec_q.shape[0]:
        cap = 2 * rec_q.shape[0]
        grown_t = np.empty(cap + 1)
        grown_y = np.empty((cap + 1, size))
        grown_q = np.empty((cap, size, _P.shape[1]))
        _copy(grown_t, rec_t)
        _copy(grown_y.reshape(grown_y.size), rec_y.reshape(rec_y.size))
        _copy(grown_q.reshape(grown_q.size), rec_q.reshape(rec_q.size))
        rec_t, rec_y, rec_q = grown_t, grown_y, grown_q
    rec_t[steps + 1] = t_new
    _copy(rec_y[steps + 1], y_new)
    for i in range(size):
        for k in range(_P.shape[1]):
            acc = 0.0
            for j in range(K.shape[0]):
                acc += K[j, i] * _P[j, k]
            rec_q[steps, i, k] = sign * acc
    return rec_t, rec_y, rec_q


@_jit
def _quadrature(K, hk, size, acc, rows, weights, count):
    """Add one accepted step's payload: ``acc += hk sum_i B_i K_i[size:size+acc.size]``, and
    the stages' factor payload ``K_i[size+acc.size:]`` as rows weighted by ``hk B_i``."""
    for j in range(acc.size):
        total = 0.0
        for i in range(_B.size):
            total += _B[i] * K[i, size + j]
        acc[j] += hk * total
    start = size + acc.size
    if start == K.shape[1]:
        return rows, weights, count
    for i in range(_B.size):
        if _B[i] == 0.0:
            continue
        if count >= rows.shape[0]:
            grown, grown_w = np.empty((2 * rows.shape[0], rows.shape[1])), np.empty(2 * rows.shape[0])
            _copy(grown.reshape(grown.size), rows.reshape(rows.size))
            _copy(grown_w, weights)
            rows, weights = grown, grown_w
        _copy(rows[count], K[i, start:])
        weights[count] = hk * _B[i]
        count += 1
    return rows, weights, count


@_jit
def _stiffness(K, y_new, stage, size):
    """``|lambda|`` of the last step from its two stages at ``t + h`` (Hairer's estimate)."""
    num, den = 0.0, 0.0
    for i in range(size):
        dk, dy = K[6, i] - K[5, i], y_new[i] - stage[i]
        num += dk * dk
        den += dy * dy
    return np.sqrt(num / den) if den > 0.0 else 0.0


@_jit
def _integrate(kernel, data, buf, mode, n, ts, ys, qs, m, t0, t1, y0, width, acc, rtol, atol, record, limits):
    """Adaptive RK45 from ``t0`` to ``t1``; SciPy's rules step for step.

    Mode 0 integrates ``f``; mode 1 the adjoint, whose rate ``-vjp`` has its sign folded
    into the step.  The kernel writes ``width >= y0.size`` values: the rate of ``y``, then
    a quadrature payload that is integrated on the same steps but kept out of the error
    norm (the seminorm of Kidger et al. 2021): ``acc.size`` entries summed into ``acc``,
    the rest returned as weighted rows (``limits = [max_steps, stiff_steps]``).

    Returns ``(y1, nfev, steps, status, t_reached, rho, rec_t, rec_y, rec_q, rows, weights)``;
    with ``record != 0`` the accepted steps' times, states and dense coefficients; ``rho``
    the stiffness estimate ``|lambda|`` when the status is ``STIFF``.
    """
    size = y0.size
    cap = 64 if record != 0 else 1
    rec_t, rec_y, rec_q = np.empty(cap + 1), np.empty((cap + 1, size)), np.empty((cap, size, _P.shape[1]))
    rows, weights, count = np.empty((64, width - size - acc.size)), np.empty(64), 0
    rec_t[0] = t0
    y = np.empty(size)
    _copy(y, y0)
    _copy(rec_y[0], y0)
    if t0 == t1:
        return y, 0, 0, OK, t0, 0.0, rec_t[:1], rec_y[:1], rec_q[:0], rows[:0], weights[:0]
    direction = 1.0 if t1 > t0 else -1.0
    sign = -1.0 if mode == 1 else 1.0
    K = np.empty((_B.size + 1, width))
    scratch, stage, y_new, err, scale = np.empty(n), np.empty(size), np.empty(size), np.empty(size), np.empty(size)
    _rhs(kernel, data, buf, mode, n, ts, ys, qs, m, t0, y, K[0], scratch)
    h_abs = _initial_step(kernel, data, buf, mode, n, ts, ys, qs, m, t0, t1, y, K[0], sign, rtol, atol, scratch)
    nfev, steps, t, status, rho, stiff_run, calm_run = 2, 0, t0, OK, 0.0, 0, 0
    while direction * (t - t1) < 0 and status == OK:
        min_step = 10 * abs(np.nextafter(t, direction * np.inf) - t)
        h_abs = max(h_abs, min_step)
        rejected = False
        while True:
            if steps >= limits[0] or h_abs < min_step:
                status = STEP_LIMIT if steps >= limits[0] else TOO_SMALL
                break
            t_new = t1 if direction * (t + h_abs * direction - t1) > 0 else t + h_abs * direction
            h = t_new - t
            h_abs = abs(h)
            _stages(kernel, data, buf, mode, n, ts, ys, qs, m, t, h, h * sign, y, K, stage, y_new, scratch)
            nfev += _B.size
            error_norm = _error_norm(K, h * sign, y, y_new, err, scale, rtol, atol)
            if error_norm < 1:
                factor = _MAX_FACTOR if error_norm == 0 else min(_MAX_FACTOR, _SAFETY * error_norm**_ERROR_EXPONENT)
                h_abs *= min(1.0, factor) if rejected else factor
                break
            if not np.isfinite(error_norm):
                status = NON_FINITE
                break
            h_abs *= max(_MIN_FACTOR, _SAFETY * error_norm**_ERROR_EXPONENT)
            rejected = True
        if status != OK:
            break
        lam = _stiffness(K, y_new, stage, size)
        if abs(h) * lam > STIFF_BOUNDARY:
            stiff_run, calm_run = stiff_run + 1, 0
        else:
            calm_run += 1
            if calm_run == STIFF_BREAK:
                stiff_run = 0
        if stiff_run >= STIFF_RUN:  # stability-limited: stop if the rest of the span would take too long
            if steps + abs(t1 - t_new) / abs(h) > limits[1]:
                status, rho, t = STIFF, lam, t_new
                break
            stiff_run = 0
        if width > size:
            rows, weights, count = _quadrature(K, h * sign, size, acc, rows, weights, count)
        if record != 0:
            rec_t, rec_y, rec_q = _record(rec_t, rec_y, rec_q, steps, t_new, y_new, K, sign)
        steps += 1
        t = t_new
        _copy(y, y_new)
        _copy(K[0], K[_B.size])
    return (
        y,
        nfev,
        steps,
        status,
        t,
        rho,
        rec_t[: steps + 1],
        rec_y[: steps + 1],
        rec_q[:steps],
        rows[:count],
        weights[:count],
    )


@_jit
def forward(f, data, buf, n, t0, times, h0, rtol, atol, limits):
    """Forward solve with dense output; states and ``f`` at the observation times.

    Returns ``(states, rates, ts, ys, qs, nfev, steps, status, t_reached, rho)``.
    """
    empty_t, empty_y, empty_q = np.empty(1), np.empty((1, n)), np.empty((0, n, _P.shape[1]))
    y, nfev, steps, status, t_reached, rho, ts, ys, qs, _, _ = _integrate(
        f,
        data,
        buf,
        np.int64(0),
        n,
        empty_t,
        empty_y,
        empty_q,
        np.int64(0),
        t0,
        times[-1],
        h0,
        np.int64(n),
        np.empty(0),
        rtol,
        atol,
        np.int64(1),
        limits,
    )  # fmt: skip  (np.int64(...): plain integers, so all callers share one compiled _integrate)
    N = times.size
    states, rates = np.empty((N, n)), np.empty((N, n))
    if status != OK:
        _copy(states[N - 1], y)
        return states, rates, ts, ys, qs, nfev, steps, status, t_reached, rho
    scratch = np.empty(n)
    for i in range(N):
        if times[i] == ts[-1]:
            _copy(states[i], ys[-1])
        elif times[i] == ts[0]:
            _copy(states[i], ys[0])
        else:
            _dense(ts, ys, qs, steps, times[i], states[i])
        _rhs(f, data, buf, 0, n, ts, ys, qs, steps, times[i], states[i], rates[i], scratch)
    return states, rates, ts, ys, qs, nfev, steps, status, t_reached, rho


@_jit
def segment(vjp, data, buf, n, ts, ys, qs, start, end, y0, width, acc, rtol, atol, limits):
    """``y`` from ``start`` back to ``end``, ``h(t)`` from the forward dense output.

    ``y`` is ``[a, a_theta, a_t]`` (``width = y0.size``: every component in the error
    norm), or ``a`` alone with ``a_t`` and ``a_theta`` as the quadrature payload of
    :func:`_integrate` (``acc`` and the returned rows).  One segment between observation
    times; the jumps between segments are applied by the one backward sweep of
    :mod:`adjoint_sym.adjoint.backward`, in Python.

    Returns ``(y, nfev, steps, status, t_reached, rho, rows, weights)``.
    """
    y, nfev, steps, status, t_reached, rho, _, _, _, rows, weights = _integrate(
        vjp, data, buf, np.int64(1), n, ts, ys, qs, ts.size - 1,
        start, end, y0, width, acc, rtol, atol, np.int64(0), limits,
    )  # fmt: skip
    return y, nfev, steps, status, t_reached, rho, rows, weights


def pointer(address: int, data: int) -> tuple:
    """``(pointer, user_data)`` of a compiled C callback with the kernels' signature."""
    return _Callback(address, data), data
