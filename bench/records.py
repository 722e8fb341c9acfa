"""The benchmarks' results: one JSON line per record in a results file, and the one table printer."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

Record = dict[str, Any]


def read_records(path: str | Path) -> list[Record]:
    """Every record of a results file (``--table``)."""
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def append_records(path: str | Path | None, records: Iterable[Record]) -> None:
    """Append to a results file (``--out``; nothing without one). Called as each record comes, so that a later
    run's failure keeps the earlier ones."""
    if not path:
        return
    with open(path, "a") as f:
        for record in records:
            f.write(json.dumps(record) + "\n")


@dataclass(frozen=True)
class Column:
    """A table column: its title and each record's cell, padded to ``width`` (``align`` '<' or '>'); numbers
    are written with ``spec`` (e.g. '.2f'), anything else as text ('-' for a figure a record lacks)."""

    title: str
    width: int
    cell: Callable[[Record], Any]
    spec: str = ""
    align: str = "<"

    def text(self, value: Any) -> str:
        if value is None:
            value = "-"
        is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
        return f"{format(value, self.spec) if is_number else value:{self.align}{self.width}}"


def table_header(columns: Sequence[Column], sep: str = "") -> str:
    return sep.join(c.text(c.title) for c in columns)


def table_row(columns: Sequence[Column], record: Record, sep: str = "") -> str:
    return sep.join(c.text(c.cell(record)) for c in columns)


def print_table(columns: Sequence[Column], records: Iterable[Record], sep: str = "", rule: int | None = 0,
                below: Callable[[Record], Iterable[str]] = lambda r: ()) -> None:
    """The header, a rule of '-' (``rule`` characters longer than the header; None: no rule), then one row per
    record followed by the lines ``below`` gives for it."""
    head = table_header(columns, sep)
    print(head)
    if rule is not None:
        print("-" * (len(head) + rule))
    for record in records:
        print(table_row(columns, record, sep))
        for line in below(record):
            print(line)


def write_report(out: str | Path, text: str, records: Iterable[Record]) -> None:
    """A report's text as ``out``.txt and its records as ``out``.jsonl (both replaced)."""
    out = Path(out)
    out.with_suffix(".txt").write_text(text + "\n")
    out.with_suffix(".jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
