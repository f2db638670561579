"""Many suites in one sandbox job: each against a fresh contestant, nothing of one reaching the next.

``CodeReward.score`` runs the harness suites of a batch a few per sandbox job (the referee forks
each suite's contestant from a nursery that never held a test). These tests put a suite that
leaves something behind right before a suite that looks for it, in the same job (checked by
recording the jobs), and check that the second finds nothing and that every verdict is the one
the suite gets in a job of its own.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from cascade_plugins.interfaces import Sample
from cascade_plugins.rewards.code import reward as reward_module
from cascade_plugins.rewards.code.reward import CodeReward, _batches
from cascade_plugins.sandbox import Isolation

TESTS = {"test": "def check(candidate):\n    assert candidate(2, 3) == 5\n    assert candidate(-1, 1) == 0\n",
         "entry_point": "add"}  # fmt: skip
HONEST = "def add(a, b):\n    return a + b\n"
WRONG = "def add(a, b):\n    return a - b\n"

#: leaves files in every writable place, a process that keeps writing, and an IPC-free mess
POLLUTER = """
import os, subprocess, sys
for folder in ('/tmp', '/dev/shm', os.getcwd(), os.path.expanduser('~')):
    try:
        with open(os.path.join(folder, 'left-behind'), 'w') as handle:
            handle.write('answer 5')
        os.makedirs(os.path.join(folder, 'nest', 'deeper'), exist_ok=True)
        os.chmod(os.path.join(folder, 'nest'), 0)
    except OSError:
        pass
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        import time
        while True:
            try:
                with open('/tmp/daemon-was-here', 'w') as handle:
                    handle.write(str(time.time()))
            except OSError:
                pass
            time.sleep(0.001)
    os._exit(0)

def add(a, b):
    return a + b
"""

#: passes only where nothing of an earlier contestant is left: files, processes
SPY = """
import os

def _leftovers():
    found = []
    for folder in ('/tmp', '/dev/shm', os.getcwd()):
        for parent, dirs, files in os.walk(folder):
            found += [os.path.join(parent, n) for n in files + dirs if 'left' in n or 'nest' in n or 'daemon' in n]
    me, parent = os.getpid(), os.getppid()
    for pid in os.listdir('/proc'):
        if pid.isdigit() and int(pid) not in (me, parent, 1):
            try:
                cmdline = open(f'/proc/{pid}/stat').read()
            except OSError:
                continue
            ppid = int(cmdline.rsplit(')', 1)[1].split()[1])
            if ppid == parent:  # a sibling: something an earlier contestant started
                found.append(f'process {pid}')
    return found

def add(a, b):
    return a + b if not _leftovers() else 0
"""

#: changes a file that was there before the first contestant: the batch cannot go on
CHANGES_MAIN = "import os\nwith open(os.path.join(os.getcwd(), 'main.py'), 'a') as f:\n    f.write('#x')\n" + HONEST
#: kills the process that forks the contestants
KILLS_NURSERY = "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\n\ndef add(a, b):\n    return a + b\n"


def sample(code: str) -> Sample:
    return Sample(response=f"```python\n{code}```", tests=TESTS)


@pytest.fixture(scope="module")
def reward() -> Iterator[CodeReward]:
    instance = CodeReward(max_workers=1, time_limit_s=1.0, suites_per_job=16)
    if instance._box().isolation_mode == Isolation.RLIMITS_ONLY:
        instance.close()
        pytest.skip("without namespaces every job shares the host's files and processes (docs/sandbox.md)")
    yield instance
    instance.close()


@pytest.fixture
def jobs(monkeypatch: pytest.MonkeyPatch) -> list[list[bool]]:
    """Per sandbox job the reward ran: whether each of its suites finished there."""
    seen: list[list[bool]] = []
    original = reward_module.run_harness

    def recording(box, specs, limits, walls=None):  # type: ignore[no-untyped-def]
        reports = original(box, specs, limits, walls)
        seen.append([report.done is not None for report in reports])
        return reports

    monkeypatch.setattr(reward_module, "run_harness", recording)
    return seen


def verdicts(reward: CodeReward, codes: list[str]) -> list[str]:
    return [result.verdict for result in reward.score([sample(code) for code in codes])]


def test_batches_split_the_work_between_the_workers():
    assert _batches(list(range(5)), workers=8) == [[0], [1], [2], [3], [4]]
    assert [len(b) for b in _batches(list(range(40)), workers=2)] == [10, 8, 6, 4, 3, 3, 2, 1, 1, 1, 1]
    assert max(len(b) for b in _batches(list(range(1000)), workers=2)) == reward_module.MAX_SUITES_PER_JOB
    assert sorted(i for b in _batches(list(range(37)), workers=3) for i in b) == list(range(37))
    assert _batches(list(range(5)), workers=1, size=2) == [[0, 1], [2, 3], [4]]


def test_a_batch_gives_each_suite_its_own_verdict(reward, jobs):
    codes = [HONEST, WRONG, "def add(a, b):\n    raise ValueError('no')\n", "import os\nos._exit(0)\n", HONEST]
    together = verdicts(reward, codes)
    assert jobs == [[True] * len(codes)]  # one job ran them all
    alone = [reward.score_one(sample(code)).verdict for code in codes]
    assert together == alone == ["correct", "incorrect", "runtime_error", "runtime_error", "correct"]


def test_nothing_a_contestant_leaves_reaches_the_next(reward, jobs):
    assert verdicts(reward, [POLLUTER, SPY, SPY]) == ["correct", "correct", "correct"]
    assert jobs == [[True, True, True]]


def test_many_processes_left_behind_are_all_gone_before_the_next(reward, jobs):
    crowd = (
        "import os, signal, time\nfor _ in range(25):\n    if os.fork() == 0:\n"
        "        signal.signal(signal.SIGTERM, signal.SIG_IGN)\n        os.setsid()\n"
        "        if os.fork() == 0:\n            time.sleep(30)\n        time.sleep(30)\n" + HONEST
    )
    assert verdicts(reward, [crowd, SPY, crowd, SPY]) == ["correct"] * 4
    assert jobs == [[True] * 4]


def test_the_spy_sees_files_and_processes_left_in_its_own_job(reward):
    left_file = "open('/tmp/left-behind', 'w').close()\n"
    orphan = "import os, time\nif os.fork() == 0:\n    if os.fork() == 0:\n        time.sleep(30)\n    os._exit(0)\n"
    orphan += "os.wait()\ntime.sleep(0.05)\n"
    assert verdicts(reward, [left_file + SPY, orphan + SPY, SPY]) == ["incorrect", "incorrect", "correct"]


def test_a_changed_file_ends_the_batch_and_the_rest_run_alone(reward, jobs):
    assert verdicts(reward, [HONEST, CHANGES_MAIN, SPY, HONEST]) == ["correct"] * 4
    assert jobs[0] == [True, True, False, False]  # the batch stopped after the change
    assert jobs[1:] == [[True], [True]]


def test_a_killed_nursery_ends_the_batch_and_the_rest_run_alone(reward, jobs):
    assert verdicts(reward, [KILLS_NURSERY, HONEST, WRONG]) == ["correct", "correct", "incorrect"]
    assert jobs[0][1:] == [False, False] and jobs[1:] == [[True], [True]]


@pytest.mark.slow
def test_a_stopped_referee_costs_one_suite_not_the_batch(reward, jobs):
    stopper = (
        "import os, signal\nfor pid in os.listdir('/proc'):\n    if pid.isdigit() and int(pid) != os.getpid():\n"
        "        try:\n            os.kill(int(pid), signal.SIGSTOP)\n        except OSError:\n            pass\n"
        "\ndef add(a, b):\n    return 0\n"
    )
    assert verdicts(reward, [HONEST, stopper, HONEST, WRONG]) == ["correct", "timeout", "correct", "incorrect"]
    assert jobs[0] == [True, False, False, False]  # the host ended that job during the stopper's suite


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="one CPU: every process stays on it anyway")
def test_a_jobs_processes_share_one_cpu(reward, jobs):
    """Referee and contestant take turns; on one CPU each wake-up stays local (docs/sandbox.md)."""
    pinned = "import os\n\ndef add(a, b):\n    return a + b if len(os.sched_getaffinity(0)) == 1 else None\n"
    assert verdicts(reward, [pinned, pinned]) == ["correct", "correct"]
    assert jobs == [[True, True]]
