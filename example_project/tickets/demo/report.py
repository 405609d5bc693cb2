"""Print the demo's progress line and its summary table."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

INTERACTION_STATUSES = ("pending", "accepted", "succeeded", "failed")


def progress_line(
    statuses: Sequence[str], elapsed: float, names: Sequence[str] = INTERACTION_STATUSES
) -> str:
    """One line: how many items are in each status."""
    counts = Counter(statuses)
    parts = [f"{name} {counts.get(name, 0)}" for name in names]
    return f"[{elapsed:5.1f}s] " + " | ".join(parts)


def table(rows: Sequence[dict[str, Any]], columns: Sequence[tuple[str, str]]) -> str:
    """A plain-text table of ``rows`` with ``(key, heading)`` columns."""
    cells = [[heading for _, heading in columns]]
    for row in rows:
        cells.append(["" if row.get(key) is None else str(row[key]) for key, _ in columns])
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True))
        for line in cells
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)
