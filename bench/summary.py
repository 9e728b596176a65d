"""The summary table at the end of ``make bench``: figure, anchor, ratio, target, PASS/MISS.

Scenarios add :class:`Row` s to one :class:`Summary` as they measure; ``main`` prints it last.
A row whose target is "at least" passes when the value is >= the target, "at most" when <=; a row
with a ratio (value / anchor) is judged on the ratio, the value printed beside it.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Row:
    """One measured figure against its target."""

    figure: str
    value: float
    unit: str
    target: float
    at_least: bool  # True: value >= target passes; False: value <= target passes
    anchor: str = ""  # what the figure is measured against in the same run, with its value
    ratio: float | None = None  # value / anchor when the target is a ratio

    @property
    def passed(self) -> bool:
        """Whether the figure (its ratio, when it has one) meets its target."""
        measured = self.value if self.ratio is None else self.ratio
        return measured >= self.target if self.at_least else measured <= self.target

    def cells(self) -> list[str]:
        """The row's printed cells."""
        value = f"{self.value:,.1f} {self.unit}"
        sign = ">=" if self.at_least else "<="
        target = f"{sign} {self.target:g}{'x' if self.ratio is not None else ' ' + self.unit}"
        ratio = "" if self.ratio is None else f"{self.ratio:.2f}x"
        return [self.figure, value, self.anchor, ratio, target, "PASS" if self.passed else "MISS"]


@dataclass
class Summary:
    """Every row measured in this run, in order."""

    rows: list[Row] = field(default_factory=list)

    def add(self, row: Row) -> Row:
        """Record a row; returns it so a scenario can print its verdict too."""
        self.rows.append(row)
        return row

    def table(self) -> list[str]:
        """The table's lines, columns padded to their widest cell."""
        header = ["figure", "value", "anchor (same run)", "ratio", "target", ""]
        cells = [header, *(row.cells() for row in self.rows)]
        widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
        lines = ["  " + "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in cells]
        lines.insert(1, "  " + "  ".join("-" * w for w in widths))
        missed = sum(not row.passed for row in self.rows)
        lines.append(f"  {len(self.rows) - missed} PASS, {missed} MISS")
        return lines
