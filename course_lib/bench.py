"""The benchmark runner behind ``course bench`` / ``make bench``.

Benchmarks live in the repository's ``benchmarks/`` folder, one module per group
(``benchmarks/core.py`` is the group ``core``). Each module defines::

    def run(ctx: BenchContext) -> list[Table]: ...

and returns tables of measured figures. The runner writes every group's tables, with
a description of the machine, into one markdown file (``BENCHMARKS.md`` by default).
Running one group (``course bench --only core``) replaces that group's section and keeps
the others, so a slow group need not be rerun to refresh a fast one.

Benchmarks are never part of the test suite; they measure, they do not assert.
"""

from __future__ import annotations

import importlib.util
import os
import platform
import re
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

BEGIN = "<!-- bench:{group}:begin -->"
END = "<!-- bench:{group}:end -->"


@dataclass
class Table:
    """One markdown table: a title, column names, rows of cells and an optional note."""

    title: str
    columns: Sequence[str]
    rows: list[Sequence[object]] = field(default_factory=list)
    note: str = ""

    def add(self, *cells: object) -> None:
        if len(cells) != len(self.columns):
            raise ValueError(
                f"table {self.title!r} has {len(self.columns)} columns "
                f"({', '.join(self.columns)}), got a row of {len(cells)} cells"
            )
        self.rows.append(cells)

    def to_markdown(self) -> str:
        def fmt(cell: object) -> str:
            if isinstance(cell, float):
                return f"{cell:.4g}"
            return str(cell).replace("|", "\\|")

        lines = [f"### {self.title}", ""]
        lines.append("| " + " | ".join(self.columns) + " |")
        lines.append("|" + "|".join(" --- " for _ in self.columns) + "|")
        lines += ["| " + " | ".join(fmt(c) for c in row) + " |" for row in self.rows]
        if self.note:
            lines += ["", self.note]
        return "\n".join(lines)


def percent(x: float) -> str:
    """A rate as a table cell: ``0.5 -> "50.0 %"``; NaN (nothing to score) -> ``"n/a"``."""
    return "n/a" if x != x else f"{100 * x:.1f} %"


@dataclass
class BenchContext:
    """What a benchmark group may read: the repository root and a fixed thread count."""

    root: Path
    threads: int = 1
    quick: bool = False  # a smoke run: tiny budgets, figures not meaningful


def machine_description() -> str:
    """CPU model, core count, GPU and library versions, as one markdown line."""
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    return (
        f"CPU: {cpu}; cores: {os.cpu_count()}; GPU: {gpu}; "
        f"Python {platform.python_version()}; torch {torch.__version__}; "
        f"{platform.system()} {platform.machine()}"
    )


def discover(bench_dir: Path) -> list[str]:
    """Names of the benchmark groups in ``bench_dir`` (every ``*.py`` not starting with ``_``)."""
    return sorted(p.stem for p in bench_dir.glob("*.py") if not p.name.startswith("_"))


def _load(bench_dir: Path, group: str):
    path = bench_dir / f"{group}.py"
    spec = importlib.util.spec_from_file_location(f"course_benchmarks.{group}", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load benchmark group {group!r} from {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def render_section(group: str, tables: list[Table], seconds: float, machine: str) -> str:
    body = "\n\n".join(t.to_markdown() for t in tables)
    stamp = time.strftime("%Y-%m-%d", time.gmtime())
    return (
        f"{BEGIN.format(group=group)}\n## {group}\n\n"
        f"Measured {stamp} in {seconds:.0f} s. {machine}\n\n{body}\n"
        f"{END.format(group=group)}"
    )


def merge(existing: str, group: str, section: str) -> str:
    """Replace ``group``'s section in ``existing`` (or append it), keeping every other section."""
    pattern = re.compile(
        re.escape(BEGIN.format(group=group)) + r".*?" + re.escape(END.format(group=group)),
        re.DOTALL,
    )
    if pattern.search(existing):
        return pattern.sub(lambda _: section, existing)
    return existing.rstrip() + "\n\n" + section + "\n"


HEADER = """# Benchmarks

Measured figures, written by `make bench` (or `course bench`); never edited by hand.
Each section names the machine it ran on. Ratios are measured within one run, on one machine,
with the same thread count for every column of a table.
"""


def run(
    root: Path,
    only: Sequence[str] | None = None,
    output: Path | None = None,
    threads: int = 1,
    quick: bool = False,
) -> Path:
    """Run the benchmark groups (all, or ``only``) and write their sections into ``output``."""
    import torch

    bench_dir = root / "benchmarks"
    groups = discover(bench_dir)
    if only:
        unknown = sorted(set(only) - set(groups))
        if unknown:
            raise ValueError(
                f"unknown benchmark group(s) {', '.join(unknown)}: "
                f"expected one of {', '.join(groups) or '(none found in ' + str(bench_dir) + ')'}"
            )
        groups = [g for g in groups if g in only]
    output = output or root / "BENCHMARKS.md"
    text = output.read_text() if output.exists() else HEADER
    torch.set_num_threads(threads)
    machine = machine_description() + f"; threads: {threads}"
    for group in groups:
        print(f"[bench] {group} ...", flush=True)
        start = time.perf_counter()
        tables = _load(bench_dir, group).run(BenchContext(root=root, threads=threads, quick=quick))
        seconds = time.perf_counter() - start
        text = merge(text, group, render_section(group, tables, seconds, machine))
        tmp = output.with_suffix(".tmp")
        tmp.write_text(text)
        tmp.replace(output)
        print(f"[bench] {group} done in {seconds:.0f} s", flush=True)
    return output
