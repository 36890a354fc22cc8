"""Evaluation reports: `results.json` (everything) and `results.md` (task x template table, means)."""

from __future__ import annotations

import json
import pathlib
from collections.abc import Mapping
from typing import Any


def primary_metric(entry: Mapping[str, Any]) -> str:
    """The first metric a task reports (the one its table row shows)."""
    return next(iter(entry["mean"]))


def markdown_table(results: Mapping[str, Any]) -> str:
    """One row per task: its primary metric per template, the mean over templates, the best template."""
    width = max((len(e["templates"]) for e in results.values()), default=0)
    header = ["task", "cluster", "metric", *[f"t{k}" for k in range(width)], "mean", "best"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    means = []
    for name, entry in results.items():
        metric = primary_metric(entry)
        cells = [f"{t['metrics'][metric]:.1f}" for t in entry["templates"]]
        cells += [""] * (width - len(cells))
        means.append(entry["mean"][metric])
        row = [name, entry["cluster"], metric, *cells, f"{entry['mean'][metric]:.1f}", f"{entry['best'][metric]:.1f}"]
        lines.append("| " + " | ".join(row) + " |")
    if means:
        overall = sum(means) / len(means)
        lines.append("| **mean** | | | " + " | " * width + f"**{overall:.1f}** | |")
    return "\n".join(lines)


def write_report(results: Mapping[str, Any], directory: str | pathlib.Path, *, title: str) -> str:
    """Writes `results.json` and `results.md` under `directory`; returns the markdown."""
    directory = pathlib.Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "results.json").write_text(json.dumps(results, indent=2, ensure_ascii=False), encoding="utf-8")
    markdown = f"# {title}\n\n{markdown_table(results)}\n"
    (directory / "results.md").write_text(markdown, encoding="utf-8")
    return markdown
