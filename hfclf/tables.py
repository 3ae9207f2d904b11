"""Tables: markdown, for comparison reports and model cards, and csv files of rows."""

import csv


def markdown_table(header: list[str], rows: list[list]) -> str:
    """A markdown table from its header cells and rows of cells (each cell written with `str`)."""
    lines = ["| " + " | ".join(map(str, header)) + " |", "|" + "---|" * len(header)]
    return "\n".join([*lines, *("| " + " | ".join(map(str, cells)) + " |" for cells in rows)])


def write_csv(path, rows: list[dict]) -> None:
    """Rows (dicts) as a csv file, written atomically; the columns are every key, in order of first appearance."""
    from .files import atomic_output

    with atomic_output(path) as temporary, open(temporary, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(dict.fromkeys(key for row in rows for key in row)))
        writer.writeheader()
        writer.writerows(rows)
