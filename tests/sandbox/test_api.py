"""The public sandbox API, exercised on real programs."""

from __future__ import annotations

import os
import pickle
import time

import pytest

from cascade_plugins.sandbox import ExecResult, Isolation, Limits, Program, Sandbox

CPP_SUM = "#include <iostream>\nint main(){ long a, b; std::cin >> a >> b; std::cout << a + b << '\\n'; }\n"


def test_python_stdin_argv_files_and_exit_code(sandbox):
    source = (
        "import sys\nprint(sys.stdin.read().upper(), sys.argv[1:], open('data/in.txt').read())\n"
        "print('warn', file=sys.stderr)\nsys.exit(3)\n"
    )
    program = sandbox.prepare(source, "python", extra_files={"data/in.txt": b"payload"})
    result = sandbox.run(program, "abc", argv=["-x", "y"])
    assert result.verdict == "RE" and result.exit_code == 3 and result.signal is None
    assert result.stdout == b"ABC ['-x', 'y'] payload\n"
    assert result.stderr == b"warn\n"
    assert result.message == "exit code 3"


def test_per_run_files_override_and_main_guard(sandbox):
    program = sandbox.prepare("if __name__ == '__main__':\n    print(open('f').read())\n", "python")
    assert sandbox.run(program, files={"f": b"one"}).stdout == b"one\n"
    assert sandbox.run(program, files={"f": b"two"}).stdout == b"two\n"


def test_python_exception_is_re_with_a_clean_traceback(sandbox):
    result = sandbox.run(sandbox.prepare("def f():\n    1/0\nf()\n", "python"))
    assert result.verdict == "RE" and result.exit_code == 1
    assert b"ZeroDivisionError" in result.stderr and b'File "' in result.stderr
    assert b"worker" not in result.stderr  # the sandbox's own frames are hidden


RESIDENT = (
    "import os, sys\nLOADED_IN = os.getpid()\nSEEN = []\n\n"
    "def main():\n    SEEN.append(1)\n"
    "    print(LOADED_IN != os.getpid(), LOADED_IN, len(SEEN), __name__, sys.argv[1:])\n"
    "    sys.exit(int(sys.stdin.read() or 0))\n"
)


def test_a_resident_program_loads_once_per_worker_and_runs_main_per_run():
    with Sandbox(max_workers=1) as box:
        program = Program("python", RESIDENT, resident=True)
        first, second = box.run(program, "0", argv=["a"]), box.run(program, "4")
        assert first.verdict == "OK" and second.verdict == "RE" and second.exit_code == 4
        forked, loaded_in, seen, name, argv = first.stdout.decode().split(maxsplit=4)
        assert forked == "True" and seen == "1" and name == "__main__" and argv.strip() == "['a']"
        assert second.stdout.decode().split()[1:3] == [loaded_in, "1"]  # same load; state not carried over
        plain = box.run(Program("python", RESIDENT + "main()\n"), "0")  # not resident: loaded by the run
        assert plain.stdout.decode().split()[0] == "False"


def test_a_resident_program_that_does_not_load_runs_as_a_file(sandbox):
    broken = Program("python", "raise SystemExit('cannot load')\n", resident=True)
    result = sandbox.run(broken)
    assert result.verdict == "RE" and b"cannot load" in result.stderr
    no_main = sandbox.run(Program("python", "print('top level only')\n", resident=True))
    assert no_main.verdict == "OK" and no_main.stdout == b"top level only\n"


def test_cpp_compiles_once_and_runs_per_input(sandbox):
    program = sandbox.prepare(CPP_SUM, "cpp")
    assert program.compile_result is not None and program.compile_result.verdict == "OK"
    assert program.binary and program.binary[:4] == b"\x7fELF"
    assert sandbox.prepare(CPP_SUM, "c++") is program  # cached: compiled once per source
    results = sandbox.run_many(program, ["1 2", "40 2", "-5 5"])
    assert [r.stdout for r in results] == [b"3\n", b"42\n", b"0\n"]
    assert all(r.verdict == "OK" for r in results)


def test_cpp_compile_error_is_ce_everywhere(sandbox):
    program = sandbox.prepare("int main( { return 0; }\n", "cpp")
    assert program.compile_failed
    assert program.compile_result.verdict == "CE" and b"error" in program.compile_result.stderr
    assert sandbox.run(program).verdict == "CE"
    assert [r.verdict for r in sandbox.run_many(program, ["", ""])] == ["CE", "CE"]
    with sandbox.spawn(program) as proc:
        assert proc.wait().verdict == "CE"


def test_cpp_crash_is_re_with_signal(sandbox):
    program = sandbox.prepare("int main(){ volatile int* p = nullptr; return *p; }\n", "cpp")
    result = sandbox.run(program)
    assert result.verdict == "RE" and result.signal == 11 and "SIGSEGV" in result.message


def test_run_many_stops_at_the_first_failure_in_order(sandbox):
    program = sandbox.prepare("n = int(input())\nassert n != 3\nprint(n)\n", "python")
    results = sandbox.run_many(program, [str(i) for i in range(6)], stop_on_failure=True)
    assert [r.verdict for r in results] == ["OK", "OK", "OK", "RE", "SKIPPED", "SKIPPED"]
    everything = sandbox.run_many(program, [str(i) for i in range(6)], stop_on_failure=False)
    assert [r.verdict for r in everything] == ["OK", "OK", "OK", "RE", "OK", "OK"]


def test_spawn_talks_through_pipes(sandbox):
    program = sandbox.prepare(
        "import sys\nfor line in sys.stdin:\n    print(int(line) * 2, flush=True)\n", "python"
    )
    to_child_r, to_child_w = os.pipe()
    from_child_r, from_child_w = os.pipe()
    with sandbox.spawn(program, stdin=to_child_r, stdout=from_child_w) as proc:
        os.close(to_child_r)
        os.close(from_child_w)
        with os.fdopen(to_child_w, "w") as writer, os.fdopen(from_child_r) as reader:
            for number in (1, 21, 50):
                writer.write(f"{number}\n")
                writer.flush()
                assert reader.readline() == f"{number * 2}\n"
            writer.close()
            assert reader.read() == ""
            result = proc.wait()
    assert result.verdict == "OK" and result.stdout == b""


def test_spawn_kill_ends_the_program(sandbox, check_healthy):
    program = sandbox.prepare("import time\ntime.sleep(30)\n", "python")
    started = time.monotonic()
    with sandbox.spawn(program, limits=Limits(cpu_time_s=5, wall_time_s=20)) as proc:
        time.sleep(0.2)
        proc.kill()
        result = proc.wait()
    assert result.verdict == "RE" and result.message == "killed on request"
    assert time.monotonic() - started < 10
    check_healthy(sandbox)


def test_context_manager_kills_an_unfinished_spawn(sandbox, check_healthy):
    program = sandbox.prepare("while True:\n    pass\n", "python")
    with sandbox.spawn(program, limits=Limits(cpu_time_s=20)) as proc:
        assert not proc.done
    assert proc.done and proc.wait().verdict == "RE"
    check_healthy(sandbox)


def test_sandbox_pickles_and_restarts_lazily():
    with Sandbox(max_workers=1) as box:
        program = box.prepare("print(6 * 7)", "python")
        assert box.run(program).stdout == b"42\n"
        clone = pickle.loads(pickle.dumps(box))
        try:
            assert clone.isolation_mode == box.isolation_mode and clone.max_workers == 1
            assert clone.run(pickle.loads(pickle.dumps(program))).stdout == b"42\n"
        finally:
            clone.close()
    # closed sandboxes start new workers when used again
    assert box.run(program).stdout == b"42\n"
    box.close()


def test_skipped_and_error_results_are_well_formed():
    skipped = ExecResult.skipped()
    assert skipped.verdict == "SKIPPED" and not skipped.ok
    assert ExecResult.sandbox_error("boom").summary()["message"] == "boom"


@pytest.mark.parametrize(
    ("kwargs", "bad"),
    [({"cpu_time_s": 0}, "cpu_time_s"), ({"memory_mb": 0}, "memory_mb"), ({"open_files": 2}, "open_files")],
)
def test_limits_are_validated(kwargs, bad):
    with pytest.raises(ValueError, match=bad):
        Limits(**kwargs)


def test_default_wall_time_follows_cpu_time():
    assert Limits(cpu_time_s=1.5).wall_s == 4.0
    assert Limits(cpu_time_s=1.5, wall_time_s=9).wall_s == 9


def test_bad_language_and_file_names_are_rejected(sandbox):
    with pytest.raises(ValueError, match="unsupported language"):
        sandbox.prepare("x", "rust")
    with pytest.raises(ValueError, match="relative path"):
        sandbox.prepare("x", "python", extra_files={"../escape": b""})
    with pytest.raises(ValueError, match="no binary"):
        sandbox.run(Program("cpp", "int main(){}"))


def test_isolation_mode_reports_what_is_in_force(sandbox):
    assert sandbox.isolation_mode in (Isolation.BWRAP, Isolation.UNSHARE, Isolation.RLIMITS_ONLY)
    assert sandbox.isolation_mode == str(sandbox.isolation_mode)
