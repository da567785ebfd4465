"""The benchmark report: JSON results written by the scripts, and the report built from them."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from benchmarks import report
from benchmarks._results import Results

ROOT = Path(__file__).resolve().parent.parent


def results(name: str = "demo", *, quick: bool = False) -> Results:
    found = Results(name, ("pyjwt",), quick=quick)
    found.comparison(
        "verify",
        "Verification",
        {"apisec verify": 1e-6, "peer decode": 4e-6},
        baseline="peer decode",
        ours=["apisec verify"],
        headline=[("apisec verify", "peer decode")],
        ratios=[("apisec verify", "peer decode (net)", 0.3, "net of the app")],
    )
    return found


def written(found: Results, tmp_path: Path, name: str = "demo") -> dict[str, Any]:
    path = tmp_path / "results" / f"{name}.json"
    found.write(path)
    data: dict[str, Any] = json.loads(path.read_text())
    return data


class TestResults:
    def test_a_comparison_keeps_times_in_order_and_computes_headline_ratios(
        self, tmp_path: Path
    ) -> None:
        """Seconds keep the printed order; a headline ratio is ours / peer; given ratios pass."""
        data = written(results(), tmp_path)
        (comparison,) = data["comparisons"]
        assert list(comparison["seconds"]) == ["apisec verify", "peer decode"]
        assert comparison["headline"][0]["ratio"] == pytest.approx(0.25)
        assert comparison["headline"][1] == {
            "ours": "apisec verify",
            "peer": "peer decode (net)",
            "ratio": 0.3,
            "measure": "net of the app",
        }

    def test_the_file_says_where_and_with_what_it_was_measured(self, tmp_path: Path) -> None:
        """Schema, machine, Python and the versions of apisec and the peers are recorded."""
        data = written(results(), tmp_path)
        assert data["schema"] == 1
        assert {"cpu", "cores", "python", "os"} <= set(data["machine"])
        assert set(data["versions"]) == {"apisec", "pyjwt"}
        assert data["versions"]["pyjwt"] != "not installed"

    def test_unknown_contenders_and_ragged_data_are_refused(self) -> None:
        """A headline naming no contender, a short series line or a short row raise."""
        found = Results("x", (), quick=True)
        with pytest.raises(ValueError, match="unknown contenders"):
            found.comparison("c", "C", {"a": 1.0}, baseline="a", ours=["a"], headline=[("a", "b")])
        with pytest.raises(ValueError, match="points"):
            found.series("s", "S", x_label="x", y_label="y", x=[1, 2], lines={"a": [1.0]})
        with pytest.raises(ValueError, match="every row"):
            found.table("t", "T", ["a", "b"], [["only one"]])

    def test_without_json_nothing_is_written(self, tmp_path: Path) -> None:
        """A script run without --json writes no file."""
        results().write(None)
        assert list(tmp_path.iterdir()) == []


class TestReport:
    def test_ratios_tables_and_versions_come_from_the_files(self, tmp_path: Path) -> None:
        """The report lists each headline ratio, each contender (apisec's in bold), the versions."""
        written(results(), tmp_path)
        text = report.render(report.load(tmp_path / "results"))
        assert "Do not edit by hand" in text
        assert "| Verification | apisec verify | peer decode | 0.25x |" in text
        assert (
            "| Verification (net of the app) | apisec verify | peer decode (net) | 0.30x |" in text
        )
        assert "| **apisec verify** | 1.00 | 0.25x |" in text
        assert "| peer decode | 4.00 | 1.00x |" in text
        assert "| pyjwt |" in text
        assert "Quick run" not in text

    def test_any_extra_series_or_table_is_reported_with_its_chart(self, tmp_path: Path) -> None:
        """A series the report has never seen gets a table and a chart; so does a table."""
        found = results("scaling")
        found.series(
            "keys",
            "Time by number of keys",
            x_label="keys",
            y_label="µs",
            x=[10, 1000],
            lines={"apisec": [1.0, 1.5], "peer": [2.0, 9.0]},
            log_x=True,
        )
        found.table("mem", "Memory", ["item", "bytes"], [["key", 104]])
        written(found, tmp_path, "scaling")
        runs = report.load(tmp_path / "results")
        text = report.render(runs)
        assert "### Time by number of keys" in text
        assert "![Time by number of keys](benchmarks/scaling-keys.png)" in text
        assert "| keys | apisec (µs) | peer (µs) |" in text
        assert "| 1,000 | 1.50 | 9.00 |" in text
        assert "<!-- scaling/mem:start -->" in text
        charts = report.draw(runs, tmp_path / "charts")
        names = {path.name for path in charts}
        assert names == {"ratios.png", "scaling.png", "scaling-keys.png"}
        assert all(path.read_bytes().startswith(b"\x89PNG") for path in charts)

    def test_known_benchmarks_come_first_and_quick_runs_are_flagged(self, tmp_path: Path) -> None:
        """Report order is the fixed one, then by name; a --quick run is called indicative."""
        for name in ("zeta", "tokens", "alpha"):
            written(results(name, quick=name == "alpha"), tmp_path, name)
        runs = report.load(tmp_path / "results")
        assert [run["benchmark"] for run in runs] == ["tokens", "alpha", "zeta"]
        assert "**Quick run** (`--quick`, few rounds) for alpha" in report.render(runs)

    def test_an_unknown_schema_is_refused(self, tmp_path: Path) -> None:
        """Files of another schema version are not silently misread."""
        (tmp_path / "x.json").write_text(json.dumps({"schema": 2, "benchmark": "x"}))
        with pytest.raises(ValueError, match="schema"):
            report.load(tmp_path)

    def test_the_committed_report_is_the_generators_output(self) -> None:
        """docs/benchmarks.md is exactly what report.py makes of benchmarks/results/*.json,
        and every chart it links to is committed."""
        runs = report.load(ROOT / "benchmarks" / "results")
        committed = (ROOT / "docs" / "benchmarks.md").read_text()
        assert report.render(runs) == committed
        assert {run["benchmark"] for run in runs} >= set(report.ORDER)
        for link in re.findall(r"\]\((benchmarks/[^)]+\.png)\)", committed):
            assert (ROOT / "docs" / link).is_file(), link
