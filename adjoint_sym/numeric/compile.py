"""SymPy expressions in, numpy callables out.

Generic on purpose (it knows nothing of adjoints): :func:`compile_kernel` takes flat
argument vectors whose slots are declared symbols, and output blocks that are scalar
expressions, explicit matrices or matrix expressions, and generates one Python function
that unpacks the arguments, evaluates the shared subexpressions once (:mod:`.cse`) and
writes every block into one flat output array.

The generated source is kept on the kernel (``kernel.source``) for inspection.  It is
built only from printed SymPy trees over symbols renamed to ``_v0, _v1, ...`` and
whitelisted numpy/scipy functions, never from user text, so executing it is safe.

Kernels accept complex input (the complex-step reference runs through them) and, when
compiled with ``batch=True``, trailing batch dimensions on the batched argument.
"""

from __future__ import annotations

import itertools
import linecache
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import scipy.special
import sympy as sp
from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction
from sympy.matrices.expressions.matexpr import MatrixElement
from sympy.printing.numpy import SciPyPrinter

from ..errors import UnsupportedExpressionError
from ..symbolic.cse import cse

_counter = itertools.count()


@dataclass(frozen=True)
class Argument:
    """A flat numeric argument and the symbols stored in it, in order.

    Each entry of ``slots`` is a scalar ``Symbol`` (one number) or a ``MatrixSymbol``
    (its entries, row-major).  ``batched`` marks the argument that may carry trailing
    batch dimensions.
    """

    name: str
    slots: tuple
    batched: bool = False

    @property
    def size(self) -> int:
        return sum(_size(s) for s in self.slots)


@dataclass(frozen=True)
class Kernel:
    """A compiled function ``fn(*args) -> ndarray`` and the source it came from.

    ``bound_source``, when given, defines ``_bind_<name>(last)``: the kernel with its last
    argument fixed, that argument unpacked (sliced, reshaped) once; :meth:`bind` runs it.
    """

    name: str
    fn: object = field(repr=False)
    source: str = field(repr=False)
    output_size: int = 0
    bound_source: str | None = field(default=None, repr=False, compare=False)
    _binder: list = field(default_factory=list, repr=False, compare=False)

    def __call__(self, *args):
        return self.fn(*args)

    def bind(self, last: object):
        """``fn`` with its last argument fixed (e.g. theta, once per gradient).

        The generated binder unpacks ``last`` into its blocks once, so a call does not
        slice and reshape them again; a kernel without one (a test's stand-in) gets a closure.

        Examples
        --------
        >>> import numpy as np, sympy as sp
        >>> x, k = sp.symbols("x k")
        >>> kern = compile_kernel("g", [Argument("x", (x,)), Argument("theta", (k,))], [k * x])
        >>> kern.bind(np.array([3.0]))(np.array([2.0]))
        array([6.])
        """
        if self.bound_source is None:
            fn = self.fn
            return lambda *args: fn(*args, last)
        if not self._binder:
            self._binder.append(_exec(self.bound_source, f"_bind_{self.name}", f"bind_{self.name}"))
        return self._binder[0](last)


def _size(s: sp.Basic) -> int:
    if isinstance(s, sp.MatrixSymbol):
        return int(s.shape[0] * s.shape[1])
    return 1


def _block_size(b: sp.Basic) -> int:
    if isinstance(b, sp.MatrixBase | sp.MatrixExpr):
        return int(b.shape[0] * b.shape[1])
    return 1


class _Printer(SciPyPrinter):
    """Prints scalar and matrix expressions as numpy code over renamed symbols."""

    def __init__(self, names: dict, elements: dict, *, outer_as_broadcast: bool = False) -> None:
        super().__init__({"fully_qualified_modules": True, "strict": True})
        self.names = names
        self.elements = elements
        # (k, 1) @ (1, m) as a broadcast product: ~3x faster at m = 128. Only where no
        # argument carries batch columns, which would turn the columns into matrices.
        self.outer_as_broadcast = outer_as_broadcast

    def _print_Symbol(self, expr: sp.Symbol) -> str:
        try:
            return self.names[expr]
        except KeyError:
            raise UnsupportedExpressionError(f"symbol {expr} is not an argument of this kernel") from None

    _print_Dummy = _print_Symbol

    def _print_MatrixSymbol(self, expr: sp.MatrixSymbol) -> str:
        return self._print_Symbol(expr)

    def _print_MatrixElement(self, expr: MatrixElement) -> str:
        parent, i, j = expr.args
        if parent in self.elements:
            arg, offset, cols = self.elements[parent]
            return f"{arg}[{offset + int(i) * cols + int(j)}]"
        return f"{self._print(parent)}[{int(i)}, {int(j)}]"

    def _print_Float(self, expr: sp.Float) -> str:
        value = float(expr)
        if not np.isfinite(value):  # symbolic/validate.py refuses these first; never print 'inf'
            raise UnsupportedExpressionError(f"the constant {value} cannot be evaluated in float64")
        return repr(value)

    # The non-smooth functions of symbolic/validate.py, written so that they also take the
    # complex-step reference's complex input: the sign of the real part, and |u| as
    # u*sign(re u), whose imaginary part carries the derivative (the modulus would lose it).
    def _print_sign(self, expr: sp.Basic) -> str:
        return f"numpy.sign(numpy.real({self._print(expr.args[0])}))"

    def _print_Abs(self, expr: sp.Basic) -> str:
        u = self._print(expr.args[0])
        return f"(({u})*numpy.sign(numpy.real({u})))"

    def _print_Max(self, expr: sp.Basic) -> str:
        return self._fold("numpy.maximum", expr.args)

    def _print_Min(self, expr: sp.Basic) -> str:
        return self._fold("numpy.minimum", expr.args)

    def _fold(self, function: str, args: tuple) -> str:
        out = self._print(args[0])
        for a in args[1:]:
            out = f"{function}({out}, {self._print(a)})"
        return out

    def _print_MatMul(self, expr: sp.MatMul) -> str:
        coeff, mats = expr.as_coeff_matrices()
        outer = len(mats) == 2 and mats[0].shape[1] == 1 and mats[1].shape[0] == 1
        product = (" * " if outer and self.outer_as_broadcast else " @ ").join(self._print(m) for m in mats)
        if coeff == 1:
            return f"({product})"
        return f"({self._print(coeff)})*({product})"

    def _print_MatAdd(self, expr: sp.MatAdd) -> str:
        return "(" + " + ".join(self._print(a) for a in expr.args) + ")"

    def _print_HadamardProduct(self, expr: sp.Basic) -> str:
        return "(" + " * ".join(self._print(a) for a in expr.args) + ")"

    def _print_HadamardPower(self, expr: sp.Basic) -> str:
        base, exponent = expr.args
        return f"({self._print(base)})**({self._print(exponent)})"

    def _print_Transpose(self, expr: sp.Transpose) -> str:
        return f"({self._print(expr.arg)}).T"

    def _print_ElementwiseApplyFunction(self, expr: ElementwiseApplyFunction) -> str:
        u = sp.Dummy("u")
        body = expr.function(u)
        inner = _Printer(
            {**self.names, u: f"({self._print(expr.expr)})"}, self.elements, outer_as_broadcast=self.outer_as_broadcast
        )
        return f"({inner._print(body)})"

    def _print_OneMatrix(self, expr: sp.Basic) -> str:
        return f"numpy.ones({tuple(int(s) for s in expr.shape)})"

    def _print_ZeroMatrix(self, expr: sp.Basic) -> str:
        return f"numpy.zeros({tuple(int(s) for s in expr.shape)})"

    def _print_Identity(self, expr: sp.Basic) -> str:
        return f"numpy.eye({int(expr.shape[0])})"

    def _print_ImmutableDenseMatrix(self, expr: sp.MatrixBase) -> str:
        rows = ", ".join("[" + ", ".join(self._print(e) for e in expr.row(i)) + "]" for i in range(expr.rows))
        return f"numpy.array([{rows}])"

    _print_MutableDenseMatrix = _print_ImmutableDenseMatrix


def compile_kernel(
    name: str,
    arguments: Sequence[Argument],
    outputs: Sequence[sp.Basic],
    *,
    output_shape: tuple[int, ...] | None = None,
    negate_from: int | None = None,
) -> Kernel:
    """Generate a numpy function returning the flattened ``outputs``, concatenated.

    Parameters
    ----------
    name : str
        Used for the generated function's name and file name in tracebacks.
    arguments : sequence of Argument
        The positional arguments: each a scalar (slots of one scalar symbol given as a
        number) or a flat vector holding its slots in order.
    outputs : sequence of sympy expressions
        Scalars, explicit matrices and matrix expressions, flattened row-major.
    output_shape : tuple of int, optional
        Reshape the flat result (e.g. ``(n, n)`` for a Jacobian).
    negate_from : int, optional
        Negate the flat result from this entry on, in place, in one numpy call (cheaper
        than a ``(-1)*`` temporary per matrix block; negation is exact).

    Returns
    -------
    Kernel
    """
    names: dict = {}
    elements: dict = {}
    prologues: list[list[str]] = []
    batched = [a.name for a in arguments if a.batched]
    for k, arg in enumerate(arguments):
        prologues.append([])
        _unpack(arg, f"_a{k}", names, elements, prologues[-1])
    replacements, reduced = cse(list(outputs), prefix="_c")
    printer = _Printer(names, elements, outer_as_broadcast=not batched)
    body = []
    for symbol, value in replacements:
        code = f"_t{len(body)}"
        names[symbol] = code
        body.append(f"    {code} = {printer.doprint(value)}")
    size = sum(_block_size(b) for b in outputs)
    batch_arg = f"_a{[a.name for a in arguments].index(batched[0])}" if batched else None
    writes: list[str] = []
    offset = 0
    for block in reduced:
        writes.extend(_write_block(block, offset, printer))
        offset += _block_size(block)
    # Every entry written (no zero left out): no need to clear the output first.
    complete = all(_fully_written(b) for b in reduced)
    epilogue = [f"    _out = numpy.{'empty' if complete else 'zeros'}(({size},) + _batch, dtype=_dtype)", *writes]
    if negate_from is not None:
        epilogue.append(f"    numpy.negative(_out[{negate_from}:], out=_out[{negate_from}:])")
    if output_shape is not None:
        epilogue.append(f"    return _out.reshape({tuple(output_shape)!r} + _batch)")
    else:
        epilogue.append("    return _out")
    codes = [f"_a{k}" for k in range(len(arguments))]
    scalars = [a.name.startswith("scalar:") and len(a.slots) == 1 and not a.batched for a in arguments]
    middle = body + _dtype_lines(codes, scalars, batch_arg)
    lines = [f"def {name}({', '.join(codes)}):", *(line for p in prologues for line in p), *middle, *epilogue]
    source = "\n".join(lines) + "\n"
    bound_source = None
    if arguments and not arguments[-1].batched and not scalars[-1]:
        last = codes[-1]
        inner = [f"def {name}({', '.join(codes[:-1])}):", *(line for p in prologues[:-1] for line in p)]
        inner += [*body, *_dtype_lines(codes, scalars, batch_arg, bound=True), *epilogue]
        bound_lines = [
            f"def _bind_{name}({last}):",
            *prologues[-1],
            f"    _plain{last} = type({last}) is _ndarray and {last}.dtype is _F64",
            *("    " + line for line in inner),
            f"    return {name}",
        ]
        bound_source = "\n".join(bound_lines) + "\n"
    return Kernel(name, _exec(source, name, name), source, size, bound_source)


def _dtype_lines(codes: list[str], scalars: list[bool], batch_arg: str | None, bound: bool = False) -> list[str]:
    """``_dtype`` and ``_batch`` of a call: float64 and ``h.shape[1:]`` straight away when every
    argument is a float64 array (a real number for a scalar one), else numpy's promotion."""
    tests = []
    for k, (code, scalar) in enumerate(zip(codes, scalars)):
        if bound and k == len(codes) - 1:
            tests.append(f"_plain{code}")
        elif scalar:
            tests.append(f"isinstance({code}, float)")
        else:
            tests.append(f"type({code}) is _ndarray and {code}.dtype is _F64")
    fast_batch = f"{batch_arg}.shape[1:]" if batch_arg else "()"
    slow_batch = f"numpy.shape({batch_arg})[1:]" if batch_arg else "()"
    return [
        f"    if {' and '.join(tests)}:",
        "        _dtype = _F64",
        f"        _batch = {fast_batch}",
        "    else:",
        f"        _dtype = numpy.result_type({', '.join(codes)}, 1.0)",
        f"        _batch = {slow_batch}",
        "    _tail = (-1,) if _batch else ()",
    ]


def _exec(source: str, name: str, label: str):
    """Run generated ``source`` (registered with linecache for tracebacks) and return ``name``."""
    filename = f"<adjoint_sym:{label}:{next(_counter)}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    namespace = {"numpy": np, "scipy": scipy, "_ndarray": np.ndarray, "_F64": np.dtype(np.float64)}
    scipy.special  # noqa: B018 - make sure the submodule is loaded for printed erf etc.
    exec(compile(source, filename, "exec"), namespace)
    return namespace[name]


def _unpack(arg: Argument, code: str, names: dict, elements: dict, prologue: list[str]) -> None:
    offset = 0
    for slot in arg.slots:
        var = f"_v{len(names)}"
        if isinstance(slot, sp.MatrixSymbol):
            rows, cols = (int(s) for s in slot.shape)
            end = offset + rows * cols
            if arg.batched and cols == 1:
                prologue.append(f"    {var} = {code}[{offset}:{end}].reshape({rows}, -1)")
            else:
                prologue.append(f"    {var} = {code}[{offset}:{end}].reshape({rows}, {cols})")
            elements[slot] = (code, offset, cols)
            offset = end
        elif len(arg.slots) == 1 and not arg.batched and arg.name.startswith("scalar:"):
            prologue.append(f"    {var} = {code}")
            offset += 1
        else:
            prologue.append(f"    {var} = {code}[{offset}]")
            offset += 1
        names[slot] = var


def _write_block(block: sp.Basic, offset: int, printer: _Printer) -> list[str]:
    size = _block_size(block)
    if isinstance(block, sp.MatrixBase):
        return [f"    _out[{offset + k}] = {printer.doprint(entry)}" for k, entry in enumerate(block) if entry != 0]
    if isinstance(block, sp.MatrixExpr):
        if isinstance(block, sp.ZeroMatrix):
            return []
        value = printer.doprint(block)
        return [f"    _out[{offset}:{offset + size}] = ({value}).reshape(({size},) + _tail)"]
    if block == 0:
        return []
    return [f"    _out[{offset}] = {printer.doprint(block)}"]


def _fully_written(block: sp.Basic) -> bool:
    if isinstance(block, sp.MatrixBase):
        return all(entry != 0 for entry in block)
    if isinstance(block, sp.MatrixExpr):
        return not isinstance(block, sp.ZeroMatrix)
    return block != 0


def scalar_argument(symbol: sp.Symbol) -> Argument:
    """An argument passed as a plain number (e.g. the time)."""
    return Argument(f"scalar:{symbol}", (symbol,))
