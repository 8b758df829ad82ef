"""The compiled half of :mod:`adjoint_sym.adjoint.fast_matrix`: a matrix-level tape, run by numba.

A matrix-level right-hand side (``tanh(W h + b)``) or its vector-Jacobian product is
not expanded into scalars: :mod:`adjoint_sym.adjoint.fast_matrix` lowers its SymPy tree
to a short *tape* of matrix operations (matrix products, elementwise functions and
arithmetic, copies), and one interpreter, compiled here once and cached on disk, runs
any tape.  A new system therefore costs no compilation at all, whatever its width: its
tape is an integer array.  The matrix products call BLAS (``np.dot`` in nopython mode
calls SciPy's BLAS on views of the operands, no copies), so at widths of 128 and more
the interpreter's own work is noise next to the products.

The interpreter is a C callback with the kernels' signature of
:mod:`adjoint_sym.adjoint.fast_engine` (``void kernel(double *out, double *mem, void
*tape)``), so the compiled RK45 runs it as it runs SymEngine's kernels.  ``mem`` is the
engine's input vector ``[t, h (n), a (n), theta (p)]`` followed by the tape's constants
and registers: every operand is an offset into it, theta's blocks are read in place.

Tape layout (``int64``): a header ``[instructions, mem size, out size, 0]`` and then one
row of :data:`WIDTH` integers per instruction, ``[op, dst, a, b, x, y, z, w]``:

===========  ======================================================================
op           effect (``M`` = mem, ``O`` = out; offsets ``dst``, ``a``, ``b``)
===========  ======================================================================
``MATMUL``   ``M[dst] (x by z) = A (x by y) @ B (y by z)``; ``w`` bit 0 / 1: ``A`` /
             ``B`` is stored transposed (``A^T`` row-major)
``UNARY``    ``M[dst + i] = fn_y(M[a + i])``, ``i < x``
``BINARY``   ``M[dst + i] = op_y(M[a + i*z], M[b + i*w])``: ``z, w`` are 0 for a
             broadcast scalar, 1 otherwise
``POWI``     ``M[dst + i] = M[a + i] ** y`` (integer ``y``)
``COPY``     ``M[dst + i] = M[a + i*z]``
``OUT``      ``O[dst + i] = M[a + i]``
``ZERO``     ``O[dst + i] = 0``
``TRANSPOSE````M[dst]`` (x by y) ``= (M[a]`` (y by x)``)^T``
===========  ======================================================================
"""

from __future__ import annotations

import math

import numpy as np

from .fast_engine import numba

WIDTH = 8
HEADER = 4
MATMUL, UNARY, BINARY, POWI, COPY, OUT, ZERO, TRANSPOSE = range(8)

#: Elementwise functions by SymPy name -> code of ``UNARY``.
UNARY_CODES = {
    name: k
    for k, name in enumerate(
        (
            "exp",
            "log",
            "sin",
            "cos",
            "tan",
            "tanh",
            "sinh",
            "cosh",
            "asin",
            "acos",
            "atan",
            "asinh",
            "acosh",
            "atanh",
            "erf",
            "erfc",
            "Abs",
            "sign",
            "sqrt",
        )
    )
}
ADD, MUL, POW, MAX, MIN, ATAN2 = range(6)

if numba is not None:
    from numba import types as _nt
    from numba.extending import intrinsic as _intrinsic

    @_intrinsic
    def _int64_pointer(typingctx, address):
        """Reinterpret the kernel's ``void *`` user data as the tape's ``int64 *``."""

        def codegen(context, builder, signature, args):
            return builder.bitcast(args[0], context.get_value_type(_nt.CPointer(_nt.int64)))

        return _nt.CPointer(_nt.int64)(address), codegen

    # reassociation and fused multiply-adds: round-off-level differences, never NaN or inf assumptions
    _jit = numba.njit(cache=True, nogil=True, error_model="numpy", fastmath={"reassoc", "contract"})
    _SIGNATURE = _nt.void(_nt.CPointer(_nt.float64), _nt.CPointer(_nt.float64), _nt.voidptr)
else:  # pragma: no cover - the module imports without numba; nothing here is then called

    def _jit(fn):
        return fn


@_jit
def _unary(code, x):
    if code == 0:
        return math.exp(x)
    if code == 1:
        return math.log(x) if x > 0 else (-np.inf if x == 0 else np.nan)
    if code == 2:
        return math.sin(x)
    if code == 3:
        return math.cos(x)
    if code == 4:
        return math.tan(x)
    if code == 5:
        return math.tanh(x)
    if code == 6:
        return math.sinh(x)
    if code == 7:
        return math.cosh(x)
    if code == 8:
        return math.asin(x) if abs(x) <= 1 else np.nan
    if code == 9:
        return math.acos(x) if abs(x) <= 1 else np.nan
    if code == 10:
        return math.atan(x)
    if code == 11:
        return math.asinh(x)
    if code == 12:
        return math.acosh(x) if x >= 1 else np.nan
    if code == 13:
        return math.atanh(x) if abs(x) < 1 else (np.nan if abs(x) > 1 else math.copysign(np.inf, x))
    if code == 14:
        return math.erf(x)
    if code == 15:
        return math.erfc(x)
    if code == 16:
        return abs(x)
    if code == 17:
        return 0.0 if x == 0 else math.copysign(1.0, x)
    return math.sqrt(x) if x >= 0 else np.nan


@_jit
def _powi(x, k):
    """``x ** k`` for an integer ``k`` by repeated squaring (exact as ``pow`` for small ``k``)."""
    base, e = (1.0 / x, -k) if k < 0 else (x, k)
    out = 1.0
    while e > 0:
        if e & 1:
            out *= base
        base *= base
        e >>= 1
    return out


@_jit
def _binary(code, x, y):
    if code == 0:
        return x + y
    if code == 1:
        return x * y
    if code == 2:
        if x < 0 and y != math.floor(y):
            return np.nan
        if x == 0 and y < 0:
            return np.inf
        return x**y
    if code == 3:
        return max(x, y)
    if code == 4:
        return min(x, y)
    return math.atan2(x, y)


#: Products of at most this many multiply-adds run as plain loops: below it a BLAS call's
#: fixed cost (checks, dispatch: ~0.2 us) exceeds the arithmetic (a 50 x 2 layer: 0.05 us).
SMALL = 512


@_jit
def _small_matmul(mem, dst, a, b, rows, inner, cols, flags):
    """``M[dst] = A @ B`` as loops, for operands too small to be worth a BLAS call."""
    a_i, a_k = (1, rows) if flags & 1 else (inner, 1)  # strides of A's row and column index
    b_k, b_j = (1, inner) if flags & 2 else (cols, 1)
    for i in range(rows):
        for j in range(cols):
            acc = 0.0
            for k in range(inner):
                acc += mem[a + i * a_i + k * a_k] * mem[b + k * b_k + j * b_j]
            mem[dst + i * cols + j] = acc


@_jit
def _matmul(mem, dst, a, b, rows, inner, cols, flags):
    """``M[dst] = A @ B`` by BLAS on views (gemm, gemv) or a loop (small, outer and dot products)."""
    out = mem[dst : dst + rows * cols]
    if rows * inner * cols <= SMALL and inner > 1:
        _small_matmul(mem, dst, a, b, rows, inner, cols, flags)
        return
    if inner == 1:  # an outer product: no reduction, BLAS would only add call overhead
        for i in range(rows):
            x = mem[a + i]
            for j in range(cols):
                out[i * cols + j] = x * mem[b + j]
        return
    if rows == 1 and cols == 1:
        acc = 0.0
        for k in range(inner):
            acc += mem[a + k] * mem[b + k]
        out[0] = acc
        return
    if cols == 1:  # gemv: A (rows x inner) @ b
        x = mem[b : b + inner]
        if flags & 1:
            np.dot(mem[a : a + rows * inner].reshape(inner, rows).T, x, out)
        else:
            np.dot(mem[a : a + rows * inner].reshape(rows, inner), x, out)
        return
    if rows == 1:  # a row times a matrix: out = B^T a, a gemv again
        x = mem[a : a + inner]
        if flags & 2:
            np.dot(mem[b : b + inner * cols].reshape(cols, inner), x, out)
        else:
            np.dot(mem[b : b + inner * cols].reshape(inner, cols).T, x, out)
        return
    target = out.reshape(rows, cols)
    A = mem[a : a + rows * inner]
    B = mem[b : b + inner * cols]
    if flags == 0:
        np.dot(A.reshape(rows, inner), B.reshape(inner, cols), target)
    elif flags == 1:
        np.dot(A.reshape(inner, rows).T, B.reshape(inner, cols), target)
    elif flags == 2:
        np.dot(A.reshape(rows, inner), B.reshape(cols, inner).T, target)
    else:
        np.dot(A.reshape(inner, rows).T, B.reshape(cols, inner).T, target)


@_jit
def _arithmetic(mem, dst, a, b, size, multiply, full_a, full_b):
    """``+`` or ``*`` entry by entry, one loop per broadcast case (unit strides vectorize)."""
    if full_a and full_b:
        if multiply:
            for i in range(size):
                mem[dst + i] = mem[a + i] * mem[b + i]
        else:
            for i in range(size):
                mem[dst + i] = mem[a + i] + mem[b + i]
        return
    if full_b:  # a scalar times or plus a vector; the same with the roles swapped below
        a, b = b, a
    s = mem[b]
    if multiply:
        for i in range(size):
            mem[dst + i] = mem[a + i] * s
    else:
        for i in range(size):
            mem[dst + i] = mem[a + i] + s


@_jit
def run(tape, mem, out):
    """Execute ``tape`` on ``mem``, writing the outputs into ``out``."""
    for k in range(tape[0]):
        row = HEADER + WIDTH * k
        op, dst, a, b = tape[row], tape[row + 1], tape[row + 2], tape[row + 3]
        x, y, z, w = tape[row + 4], tape[row + 5], tape[row + 6], tape[row + 7]
        if op == MATMUL:
            _matmul(mem, dst, a, b, x, y, z, w)
        elif op == UNARY:
            for i in range(x):
                mem[dst + i] = _unary(y, mem[a + i])
        elif op == BINARY:
            if y < POW:  # ADD or MUL
                _arithmetic(mem, dst, a, b, x, y == MUL, z, w)
            else:
                for i in range(x):
                    mem[dst + i] = _binary(y, mem[a + i * z], mem[b + i * w])
        elif op == POWI:
            if y == 2:  # the squares of tanh' and friends: no call to pow()
                for i in range(x):
                    mem[dst + i] = mem[a + i] * mem[a + i]
            else:
                for i in range(x):
                    mem[dst + i] = _powi(mem[a + i], y)
        elif op == COPY:
            for i in range(x):
                mem[dst + i] = mem[a + i * z]
        elif op == OUT:
            for i in range(x):
                out[dst + i] = mem[a + i]
        elif op == ZERO:
            for i in range(x):
                out[dst + i] = 0.0
        else:  # TRANSPOSE
            for i in range(x):
                for j in range(y):
                    mem[dst + i * y + j] = mem[a + j * x + i]


if numba is not None:

    @numba.cfunc(_SIGNATURE, cache=True, nopython=True, error_model="numpy")
    def interpreter(out_ptr, mem_ptr, data):
        """The C callback the engine calls: ``data`` points at the tape."""
        tape = numba.carray(_int64_pointer(data), (HEADER,))
        tape = numba.carray(_int64_pointer(data), (HEADER + WIDTH * tape[0],))
        run(tape, numba.carray(mem_ptr, (tape[1],)), numba.carray(out_ptr, (tape[2],)))

    ADDRESS = interpreter.address
else:  # pragma: no cover
    interpreter = None
    ADDRESS = 0


__all__ = ["ADDRESS", "HEADER", "UNARY_CODES", "WIDTH", "run"]
