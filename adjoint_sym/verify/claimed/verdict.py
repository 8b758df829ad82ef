"""The verdict on a claimed derivation: one row per piece, as JSON, Markdown, LaTeX or text."""

from __future__ import annotations

from dataclasses import dataclass, field

from .pieces import MEANING

#: Exit codes of ``adjoint-sym verify-derivation`` by overall verdict.
EXIT = {True: 0, False: 1, None: 4}
_WORD = {True: "holds", False: "fails", None: "undecided"}


@dataclass(frozen=True)
class PieceVerdict:
    """The decision on one claimed piece.

    Attributes
    ----------
    piece : str
        ``"adjoint"``, ``"terminal"``, ... (see :data:`adjoint_sym.verify.claimed.pieces.PIECES`).
    holds : bool or None
        True (proved), False (counterexample), None (undecided: said so, never a proof).
    how : str
        The stage that proved it, or what found the counterexample, or why undecided.
    claimed, expected, residual : tuple of str
        The claim as read, what it must equal, and their difference (simplified).
    diagnosis : str or None
        The known mistake, when it is one (flipped sign, missing transpose, ...).
    counterexample : dict or None
        ``point`` (where the residual is nonzero, with both sides' values) and
        ``gradient`` (a problem on which the integrated claim is rejected, both numbers).
    """

    piece: str
    holds: bool | None
    how: str
    claimed: tuple[str, ...]
    expected: tuple[str, ...]
    residual: tuple[str, ...]
    diagnosis: str | None = None
    counterexample: dict | None = None
    seconds: float = 0.0
    latex: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def verdict(self) -> str:
        return _WORD[self.holds]

    def as_dict(self) -> dict:
        return {
            "piece": self.piece,
            "holds": self.holds,
            "how": self.how,
            "claimed": list(self.claimed),
            "expected": list(self.expected),
            "residual": list(self.residual),
            "diagnosis": self.diagnosis,
            "counterexample": self.counterexample,
            "seconds": round(self.seconds, 4),
        }

    def __repr__(self) -> str:
        tail = f", diagnosis={self.diagnosis!r}" if self.diagnosis else ""
        return f"PieceVerdict({self.piece!r}, {self.verdict}, how={self.how!r}{tail})"


@dataclass(frozen=True)
class DerivationVerdict:
    """Every claimed piece decided, and the claim integrated as a whole.

    ``holds`` is False when some piece fails, None when none fails but some is undecided,
    True when every piece is proved.  ``experiment`` is the whole claim integrated through
    the backward sweep against the references.
    """

    name: str
    pieces: tuple[PieceVerdict, ...]
    experiment: dict | None
    seconds: float

    @property
    def holds(self) -> bool | None:
        outcomes = [p.holds for p in self.pieces]
        if False in outcomes:
            return False
        if None in outcomes:
            return None
        if self.experiment is not None and not self.experiment["agrees"]:
            return None  # every piece proved yet the integrated claim disagrees: report, do not call it a proof
        return True

    @property
    def exit_code(self) -> int:
        return EXIT[self.holds]

    def __getitem__(self, piece: str) -> PieceVerdict:
        for p in self.pieces:
            if p.piece == piece:
                return p
        raise KeyError(f"no piece {piece!r} in this verdict; pieces: {[p.piece for p in self.pieces]}")

    def as_dict(self) -> dict:
        """JSON-ready: ``holds`` (true/false/null), ``pieces`` [...], ``experiment``, ``seconds``."""
        return {
            "name": self.name,
            "holds": self.holds,
            "pieces": [p.as_dict() for p in self.pieces],
            "experiment": self.experiment,
            "seconds": round(self.seconds, 4),
        }

    def text(self) -> str:
        """A plain-text table, then each counterexample."""
        rows = [("piece", "claims", "verdict", "how", "diagnosis")]
        rows += [(p.piece, MEANING[p.piece], p.verdict, p.how, p.diagnosis or "") for p in self.pieces]
        widths = [max(len(r[k]) for r in rows) for k in range(4)]
        lines = [f"derivation {self.name}: {_WORD[self.holds]} ({self.seconds:.2f} s)"]
        for r in rows:
            lines.append("  ".join(c.ljust(w) for c, w in zip(r[:4], widths)) + ("  " + r[4] if r[4] else ""))
        for p in self.pieces:
            if p.counterexample:
                lines.append(f"{p.piece}: {_describe_counterexample(p.counterexample)}")
        if self.experiment:
            lines.append(f"whole claim integrated: {_describe_experiment(self.experiment)}")
        return "\n".join(lines) + "\n"

    def markdown(self) -> str:
        """A Markdown table of pieces with verdict, residual, diagnosis and counterexample."""
        lines = [
            f"**Derivation {self.name}: {_WORD[self.holds]}**",
            "",
            "| piece | claimed | verdict | how | residual | diagnosis | counterexample |",
            "|---|---|---|---|---|---|---|",
        ]
        for p in self.pieces:
            cells = [
                f"{p.piece} ({MEANING[p.piece]})",
                _md("; ".join(p.claimed)),
                f"**{p.verdict}**",
                _md(p.how),
                _md("; ".join(p.residual)),
                _md(p.diagnosis or ""),
                _md(_describe_counterexample(p.counterexample) if p.counterexample else ""),
            ]
            lines.append("| " + " | ".join(cells) + " |")
        if self.experiment:
            lines += ["", f"Whole claim integrated: {_md(_describe_experiment(self.experiment))}"]
        return "\n".join(lines) + "\n"

    def latex(self) -> str:
        """A ``tabular`` (booktabs-free) of pieces, claims and residuals in maths mode."""
        lines = [
            r"\begin{tabular}{llllp{0.3\linewidth}}",
            r"piece & claimed & verdict & residual & diagnosis \\ \hline",
        ]
        for p in self.pieces:
            claimed = ", ".join(f"${c}$" for c in p.latex.get("claimed", ()))
            residual = ", ".join(f"${r}$" for r in p.latex.get("residual", ()))
            lines.append(
                rf"\texttt{{{_tex(p.piece)}}} & {claimed} & \textbf{{{p.verdict}}} & {residual} & "
                rf"{_tex(p.diagnosis or '')} \\"
            )
        lines.append(r"\end{tabular}")
        return "\n".join(lines) + "\n"

    def _repr_markdown_(self) -> str:
        return self.markdown()

    def __repr__(self) -> str:
        inner = ", ".join(f"{p.piece}={p.verdict}" for p in self.pieces)
        return f"DerivationVerdict({self.name!r}, {_WORD[self.holds]}: {inner})"


def _describe_counterexample(ce: dict) -> str:
    parts = []
    point = ce.get("point")
    if point:
        where = ", ".join(f"{k} = {v:.6g}" for k, v in point["at"].items())
        parts.append(
            f"at {where}: {point['component']} claimed {_num(point['claimed'])}, correct {_num(point['expected'])}"
        )
    grad = ce.get("gradient")
    if grad:
        refs = ", ".join(f"{m} {v:.8g}" for m, v in grad["references"].items())
        parts.append(
            f"on {grad['problem']}: {grad['quantity']} = {grad['claimed']:.8g} from the claim, {refs} "
            f"(relative deviation {grad['deviation']:.2g})"
        )
    elif ce.get("note"):
        parts.append(ce["note"])
    return "; ".join(parts)


def _describe_experiment(exp: dict) -> str:
    if "error" in exp:
        return f"the claimed equations could not be integrated on {exp['problem']}: {exp['error']}"
    verdict = "agrees with" if exp["agrees"] else "is rejected by"
    return (
        f"{verdict} the {exp['reference']} reference on {exp['problem']} (worst {exp['quantity']}: "
        f"{exp['claimed']:.8g} vs {exp['value']:.8g}, relative deviation {exp['deviation']:.2g})"
    )


def _num(value) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(_num(v) for v in value) + "]"
    if isinstance(value, dict):  # a complex value as {"re", "im"}
        return f"{value['re']:.6g}{value['im']:+.6g}i"
    return f"{value:.6g}"


def _md(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


_TEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{", "}": r"\}"}


def _tex(text: str) -> str:
    return "".join(_TEX.get(ch, ch) for ch in str(text)).replace("^", r"\^{}").replace("~", r"\~{}")


__all__ = ["EXIT", "DerivationVerdict", "PieceVerdict"]
