"""Markdown tables, for comparison reports and model cards."""


def markdown_table(header: list[str], rows: list[list]) -> str:
    """A markdown table from its header cells and rows of cells (each cell written with `str`)."""
    lines = ["| " + " | ".join(map(str, header)) + " |", "|" + "---|" * len(header)]
    return "\n".join([*lines, *("| " + " | ".join(map(str, cells)) + " |" for cells in rows)])
