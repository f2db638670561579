"""C++ dialects, compiler diagnostics that must not quote the host's files, tiny memory limits."""

from __future__ import annotations

import pytest

from cascade_plugins.sandbox import Limits
from cascade_plugins.sandbox.sandbox import language_and_standard

CPP20 = """
#include <compare>
#include <concepts>
#include <cstdio>
template <std::integral T> T twice(T x) { return 2 * x; }
struct P { int a, b; auto operator<=>(const P&) const = default; };
int main() { P x{1, 2}, y{1, 3}; std::printf("%d %d\\n", twice(21), int(x < y)); }
"""


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("cpp", ("cpp", "gnu++17")),
        ("C++", ("cpp", "gnu++17")),
        ("c++20", ("cpp", "gnu++20")),
        ("cpp20", ("cpp", "gnu++20")),
        ("gnu++2a", ("cpp", "gnu++20")),
        ("c++23", ("cpp", "gnu++23")),
        ("c++11", ("cpp", "gnu++11")),
        ("python3", ("python", None)),
    ],
)
def test_language_names_carry_the_cpp_dialect(name, expected):
    assert language_and_standard(name) == expected


@pytest.mark.parametrize("name", ["c++99", "java", "c++2", ""])
def test_unknown_languages_are_refused_by_name(name):
    with pytest.raises(ValueError, match="unsupported language"):
        language_and_standard(name)


def test_cpp20_code_compiles_as_cpp20_and_not_as_the_default(sandbox):
    assert sandbox.prepare(CPP20, "cpp").compile_failed  # concepts and <=> are not C++17
    program = sandbox.prepare(CPP20, "c++20")
    assert not program.compile_failed, program.compile_result
    assert sandbox.run(program).stdout == b"42 1\n"


@pytest.mark.parametrize("path", ["/etc/passwd", "/etc/hostname", "/proc/self/environ"])
def test_compiler_errors_do_not_quote_files_outside_the_program(sandbox, path):
    program = sandbox.prepare(f'#include "{path}"\nint main() {{ return 0 }}\n', "cpp")
    result = program.compile_result
    assert result is not None and result.verdict == "CE", result
    with open("/etc/passwd", "rb") as handle:
        first_user = handle.read().split(b":", 1)[0]
    assert first_user not in result.stderr and b"x:0:0" not in result.stderr, result.stderr
    assert b"outside the program are not shown" in result.stderr or path == "/proc/self/environ"


def test_a_program_own_errors_are_reported_in_full(sandbox):
    result = sandbox.prepare("int main() { undeclared_name = 1; }\n", "cpp").compile_result
    assert result is not None and result.verdict == "CE"
    assert b"main.cpp:1" in result.stderr and b"undeclared_name" in result.stderr
    assert b"not shown" not in result.stderr


SMALL = "#include <cstdio>\nstatic char buf[{size}];\nint main() {{ for (int i = 0; i < {size}; i += 4096) buf[i] = 1;"
SMALL += ' std::printf("%d\\n", buf[0]); }}\n'


@pytest.mark.parametrize("memory_mb", [2, 8])
def test_memory_limits_below_the_address_space_floor_still_hold(sandbox, memory_mb):
    limits = Limits(cpu_time_s=2.0, memory_mb=memory_mb)
    fits = sandbox.run(sandbox.prepare(SMALL.format(size=256 * 1024), "cpp"), limits=limits)
    assert fits.verdict == "OK" and fits.stdout == b"1\n", fits
    too_big = sandbox.run(sandbox.prepare(SMALL.format(size=32 * 2**20), "cpp"), limits=limits)
    assert too_big.verdict == "MLE", too_big
    assert f"{memory_mb} MiB" in too_big.message
    heap = "#include <vector>\nint main() { std::vector<char> v(32 << 20, 1); return v[4096] - 1; }\n"
    assert sandbox.run(sandbox.prepare(heap, "cpp"), limits=limits).verdict == "MLE"
