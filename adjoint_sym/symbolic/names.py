"""Names a reader can trust, and user text shown safely in messages.

Python reads identifiers in NFKC normal form, so ``ｘ`` (full width) *is* ``x`` to the
parser: two declared names that normalise alike would be folded into one.  Letters of
other scripts that look like Latin ones (Cyrillic ``х``, Greek ``Ο``) print identically
to a Latin name and cannot be told apart on screen.  :func:`check_names` refuses both,
and every name is kept in its normal form.

:func:`shown` is how any user text (a name, a key, a label, an expression) enters an error
message: control, format (bidi) and surrogate characters escaped, the length bounded.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections.abc import Iterable, Sequence

from ..errors import InvalidModelError

#: Letters of other scripts that render like a Latin letter in common fonts (Unicode
#: TR39 confusables, the single-letter cases), mapped to that letter.
LOOK_ALIKES = {
    **dict(zip("асеһіјорѕухԁԛԝӏ", "acehijopsyxdqwl")),
    **dict(zip("АВСЕНІЈКМОРЅТХУ", "ABCEHIJKMOPSTXY")),
    **dict(zip("ΑΒΕΖΗΙΚΜΝΟΡΤΥΧο", "ABEZHIKMNOPTYXo")),
}

#: Scripts written together in one word (Japanese mixes kanji and kana).
_JAPANESE = {"CJK", "HIRAGANA", "KATAKANA"}

_MAX_SHOWN = 60


def shown(text: object, limit: int = _MAX_SHOWN) -> str:
    """``text`` quoted for a message: invisible and control characters escaped, at most ``limit`` long.

    Examples
    --------
    >>> shown("x\\u202ey")
    "'x\\\\u202ey'"
    >>> shown("z" * 100, limit=12)
    "'zzzzzzzzz...' (100 characters)"
    """
    text = str(text)
    cut = len(text) > limit
    body = escape(text[: max(1, limit - 3)] + "..." if cut else text)
    return f"'{body}'" + (f" ({len(text)} characters)" if cut else "")


def shown_value(value: object, limit: int = _MAX_SHOWN) -> str:
    """``repr(value)`` for a message, escaped and at most ``limit`` characters long.

    Examples
    --------
    >>> shown_value("abc"), shown_value(list(range(100)), limit=20)
    ("'abc'", '[0, 1, 2, 3, 4, 5...')
    """
    try:
        text = repr(value)
    except ValueError:  # an integer past Python's 4,300-digit str limit
        text = f"<{type(value).__name__} too large to show>"
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return escape(text)


def escape(text: str) -> str:
    """Replace control, format (bidi), surrogate and unassigned characters by ``\\uXXXX`` escapes.

    Newlines and tabs are kept.

    Examples
    --------
    >>> escape("red\\x1b[31m")
    'red\\\\x1b[31m'
    """
    if text.isprintable():
        return text
    out = []
    for ch in text:
        if ch.isprintable() or ch in "\n\t":
            out.append(ch)
        else:
            code = ord(ch)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")
    return "".join(out)


#: Characters with an inline meaning in Markdown (the label stands after "# ", so the
#: line-start ones, "#", "-", "1.", cannot start a construct).
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]|~])")


def markdown_text(text: str) -> str:
    """User text as literal Markdown: HTML escaped, Markdown's punctuation backslashed, one line.

    Examples
    --------
    >>> print(markdown_text("<b>x_1</b>"))
    &lt;b&gt;x\\_1&lt;/b&gt;
    """
    text = escape(" ".join(str(text).split()))
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)


_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "<": r"\textless{}",
    ">": r"\textgreater{}",
}

#: Non-ASCII characters that statements use (a notation's lambda, mu, nu; relations) in
#: math mode: T1-encoded text fonts have no Greek, and pdflatex stops on an unknown character.
_LATEX_SYMBOLS = {
    "\u2264": r"$\le$", "\u2265": r"$\ge$", "\u2248": r"$\approx$", "\u00d7": r"$\times$",
    "\u00b7": r"$\cdot$", "\u2212": "-", "\u2192": r"$\to$", "\u2202": r"$\partial$",
    "\u222b": r"$\int$", "\u2211": r"$\sum$", "\u221a": r"$\surd$", "\u221e": r"$\infty$",
    "\u2218": r"$\circ$", "\u2299": r"$\odot$", "\u2016": r"$\|$", "\u1d40": r"$^T$",
    "\u00b2": r"$^2$", "\u00b3": r"$^3$",
}  # fmt: skip


def latex_text(text: str) -> str:
    r"""User text as literal LaTeX text, all ASCII: specials escaped, control characters
    dropped, Greek letters and relations in math mode, any other character named.

    Examples
    --------
    >>> print(latex_text("λ_t ≤ 1e-8 for θ, 50% ⊗"))
    $\lambda$\_t $\le$ 1e-8 for $\theta$, 50\% [U+2297]
    """
    return "".join(_latex_char(ch) for ch in str(text) if ch.isprintable())


def _latex_char(ch: str) -> str:
    if ch in _LATEX_SPECIAL:
        return _LATEX_SPECIAL[ch]
    if ch.isascii():
        return ch
    if ch in _LATEX_SYMBOLS:
        return _LATEX_SYMBOLS[ch]
    name = unicodedata.name(ch, "")
    if name.startswith(("GREEK SMALL LETTER ", "GREEK CAPITAL LETTER ")) and len(name.split()) == 4:
        letter = name.split()[-1].lower().replace("lamda", "lambda")
        return f"$\\{letter.capitalize() if 'CAPITAL' in name else letter}$"
    ascii_form = unicodedata.normalize("NFKD", ch).encode("ascii", "ignore").decode()
    return latex_text(ascii_form) if ascii_form else f"[U+{ord(ch):04X}]"  # named, never dropped


def markdown_code(text: str) -> str:
    """User text as a Markdown code span (HTML is inert there), fenced by enough backticks.

    Examples
    --------
    >>> markdown_code("a `b` c")
    '`` a `b` c ``'
    """
    text = escape(" ".join(str(text).split()))
    fence = "`" * (max((len(m) for m in re.findall(r"`+", text)), default=0) + 1)
    return f"{fence} {text} {fence}"


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """``"; did you mean 'sin'?"`` for the closest candidate, or an empty string.

    Examples
    --------
    >>> did_you_mean("sinn", ["sin", "cos"])
    "; did you mean 'sin'?"
    """
    close = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def normal(name: str) -> str:
    """The NFKC normal form, which is how Python (and the expression parser) reads a name."""
    return unicodedata.normalize("NFKC", name)


def _script(ch: str) -> str | None:
    if not ch.isalpha():
        return None
    try:
        script = unicodedata.name(ch).split()[0]
    except ValueError:
        return "UNNAMED"
    return "CJK" if script in _JAPANESE else script


def _skeleton(name: str) -> str:
    return "".join(LOOK_ALIKES.get(ch, ch) for ch in name)


def check_name(name: str, where: str) -> None:
    """Refuse a name that mixes scripts or is written entirely in look-alikes of Latin letters."""
    name_nfkc = normal(name)
    scripts = {s for s in map(_script, name_nfkc) if s is not None}
    if len(scripts) > 1:
        kinds = " and ".join(sorted(s.title() for s in scripts))
        raise InvalidModelError(
            f"{where}: {shown(name)} mixes {kinds} letters, which look alike on screen; write it in one script"
        )
    letters = [ch for ch in name_nfkc if ch.isalpha()]
    if letters and "LATIN" not in scripts and all(ch in LOOK_ALIKES for ch in letters):
        script, latin = next(iter(scripts)).title(), _skeleton(name_nfkc)
        raise InvalidModelError(
            f"{where}: {shown(name)} is written in {script} letters that look like the Latin {latin!r}; "
            f"use the Latin name {latin!r} or a name a reader can tell apart"
        )


def check_names(named: Sequence[tuple[str, str]]) -> None:
    """Refuse two names that Python reads alike (NFKC), and each name :func:`check_name` refuses.

    A name written in look-alikes of Latin letters is refused on its own, so two names that
    only *look* alike cannot both pass.

    Parameters
    ----------
    named : sequence of (where, name)
        Every declared name with where it was declared (``"state[1]"``).

    Examples
    --------
    >>> check_names([("state[0]", "x"), ("state[1]", "y")])
    >>> check_names([("state[0]", "x"), ("state[1]", "\\uff58")])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    adjoint_sym.errors.InvalidModelError: state[1]: 'ｘ' and state[0] 'x' are the same name to Python ...
    """
    by_normal: dict[str, tuple[str, str]] = {}
    for where, name in named:
        check_name(name, where)
        key = normal(name)
        if key in by_normal and by_normal[key][1] != name:
            other_where, other = by_normal[key]
            raise InvalidModelError(
                f"{where}: {shown(name)} and {other_where} {shown(other)} are the same name to Python "
                "(NFKC normalisation); rename one"
            )
        by_normal.setdefault(key, (where, name))


__all__ = [
    "check_name",
    "check_names",
    "did_you_mean",
    "escape",
    "latex_text",
    "markdown_code",
    "markdown_text",
    "normal",
    "shown",
    "shown_value",
]
