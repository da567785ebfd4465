"""Machine-readable benchmark results: what each ``bench_*.py --json PATH`` writes.

A script measures exactly as before and prints its tables; besides, it hands
the numbers it printed to a :class:`Results`, which writes one JSON file that
``benchmarks/report.py`` turns into ``docs/benchmarks.md`` and its charts.

A file holds (``schema`` 1):

* ``comparisons`` — contenders timed side by side (seconds per call), with
  the ``headline`` ratios apisec is judged by (``ours`` time / ``peer`` time,
  lower is faster);
* ``series`` — curves (one x axis, one or more named lines), e.g. scaling
  with the number of keys or the body size; the report draws every series
  it finds;
* ``tables`` — anything else worth printing as is (throughput, memory);
* the machine, the Python and the versions of apisec and of every peer.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

SCHEMA = 1


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    cpu = platform.processor() or platform.machine()
    memory = None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = round(int(line.split()[1]) / 1024 / 1024, 1)
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": memory,
        "os": platform.platform(terse=True),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
    }


def versions(names: Iterable[str]) -> dict[str, str]:
    """Installed versions of apisec and ``names`` (distribution names)."""
    found = {}
    for name in ("apisec", *names):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "not installed"
    return found


class Results:
    """Collects one benchmark run and writes it as JSON."""

    def __init__(self, benchmark: str, peers: Iterable[str], *, quick: bool) -> None:
        script = sys.modules["__main__"]
        self.data: dict[str, Any] = {
            "schema": SCHEMA,
            "benchmark": benchmark,
            "about": (script.__doc__ or "").strip(),
            "command": " ".join(["python", *sys.argv]),
            "quick": quick,
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "machine": machine(),
            "versions": versions(peers),
            "comparisons": [],
            "series": [],
            "tables": [],
        }
        self._start = time.perf_counter()

    def version(self, name: str, value: str) -> None:
        """Record the version of something that is not a Python distribution (a server)."""
        self.data["versions"][name] = value

    def comparison(
        self,
        id: str,
        title: str,
        seconds: Mapping[str, float],
        *,
        baseline: str | None,
        ours: Sequence[str],
        headline: Iterable[tuple[str, str]] = (),
        ratios: Iterable[tuple[str, str, float, str]] = (),
        note: str | None = None,
    ) -> None:
        """Contenders' seconds per call, as printed.

        Args:
            baseline: the contender the printed ratios are relative to.
            ours: which contenders are apisec's.
            headline: (ours, peer) pairs reported as ``seconds[ours] / seconds[peer]``.
            ratios: (ours, peer, ratio, measure) computed by the script itself
                (paired or net ratios that whole times cannot give).
        """
        pairs = list(headline)
        named = [*ours, *(name for pair in pairs for name in pair)]
        missing = [name for name in named if name not in seconds]
        if missing or (baseline is not None and baseline not in seconds):
            raise ValueError(f"{id}: unknown contenders {missing or [baseline]}")
        rows = [
            {"ours": a, "peer": b, "ratio": seconds[a] / seconds[b], "measure": "time per call"}
            for a, b in pairs
        ]
        rows += [{"ours": a, "peer": b, "ratio": r, "measure": m} for a, b, r, m in ratios]
        self.data["comparisons"].append(
            {
                "id": id,
                "title": title,
                "unit": "s",
                "baseline": baseline,
                "ours": list(ours),
                "seconds": dict(seconds),
                "headline": rows,
                "note": note,
            }
        )

    def series(
        self,
        id: str,
        title: str,
        *,
        x_label: str,
        y_label: str,
        x: Sequence[float],
        lines: Mapping[str, Sequence[float]],
        log_x: bool = False,
        log_y: bool = False,
    ) -> None:
        """A curve: one x axis and one value per x for each named line."""
        for name, values in lines.items():
            if len(values) != len(x):
                raise ValueError(f"{id}: line {name!r} has {len(values)} points for {len(x)} x")
        self.data["series"].append(
            {
                "id": id,
                "title": title,
                "x_label": x_label,
                "y_label": y_label,
                "x": list(x),
                "lines": {name: list(values) for name, values in lines.items()},
                "log_x": log_x,
                "log_y": log_y,
            }
        )

    def table(
        self,
        id: str,
        title: str,
        columns: Sequence[str],
        rows: Iterable[Sequence[object]],
        *,
        note: str | None = None,
    ) -> None:
        """Any other result, printed in the report as a table."""
        body = [list(row) for row in rows]
        if any(len(row) != len(columns) for row in body):
            raise ValueError(f"{id}: every row needs {len(columns)} cells")
        self.data["tables"].append(
            {"id": id, "title": title, "columns": list(columns), "rows": body, "note": note}
        )

    def write(self, path: str | Path | None) -> None:
        """Write the JSON file (nothing when ``path`` is None: the script ran without --json)."""
        if path is None:
            return
        self.data["duration_s"] = round(time.perf_counter() - self._start, 1)
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(self.data, indent=1) + "\n")
