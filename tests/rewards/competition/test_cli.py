"""``cascade judge`` on the real packages."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from cascade_plugins.cli import cli

PROBLEMS = Path(__file__).parent / "problems"


def _judge(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["judge", *args])
    return result.exit_code, result.output


def test_table_per_subtask_and_total() -> None:
    code, output = _judge(str(PROBLEMS / "divisors"), str(PROBLEMS / "divisors/submissions/partial/naive.py"))
    assert code == 0, output
    lines = [line for line in output.splitlines() if "│" in line]
    assert any("small" in line and "AC" in line and "30 / 30" in line for line in lines)
    assert any("large" in line and "TLE" in line and "0 / 70" in line for line in lines)
    assert any("total" in line and "TLE" in line and "30 / 100" in line for line in lines)


def test_json_report() -> None:
    code, output = _judge(
        str(PROBLEMS / "sum"), str(PROBLEMS / "sum/submissions/accepted/sum.py"), "--json", "--isolation", "auto"
    )
    assert code == 0, output
    report = json.loads(output)
    assert report["verdict"] == "AC" and report["normalized_score"] == 1.0
    assert [t["verdict"] for t in report["tests"]] == ["AC"] * 4


def test_language_option_and_per_test_rows(tmp_path: Path) -> None:
    solution = tmp_path / "solution.txt"
    solution.write_text((PROBLEMS / "sum/submissions/wrong_answer/overflow.cpp").read_text())
    code, output = _judge(str(PROBLEMS / "sum"), str(solution), "--language", "cpp", "--tests")
    assert code == 0, output
    assert "secret/large/1" in output and "SKIPPED" in output and "WA" in output


def test_unknown_extension_needs_a_language(tmp_path: Path) -> None:
    solution = tmp_path / "solution.txt"
    solution.write_text("print(1)\n")
    code, output = _judge(str(PROBLEMS / "sum"), str(solution))
    assert code == 2 and "--language" in output


def test_broken_package_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    solution = tmp_path / "a.py"
    solution.write_text("print(1)\n")
    code, output = _judge(str(tmp_path), str(solution))
    assert code == 1 and "problem.yaml: missing" in output


def test_language_option_takes_a_cxx_dialect(tmp_path: Path) -> None:
    solution = tmp_path / "sum.cpp"
    solution.write_text(
        "#include <iostream>\nconsteval long long twice(long long x) { return 2 * x; }\n"
        "int main() { long long a, b; std::cin >> a >> b; std::cout << a + b + twice(0) << '\\n'; }\n"
    )
    code, output = _judge(str(PROBLEMS / "sum"), str(solution), "--language", "c++20", "--json")
    assert code == 0 and json.loads(output)["verdict"] == "AC", output
    code, output = _judge(str(PROBLEMS / "sum"), str(solution), "--language", "cobra")
    assert code == 2 and "unknown language 'cobra'" in output
