"""Cheating programs for the reward-hacking tests: each solves nothing and tries to be paid anyway.

Python cheats define ``add(a, b)`` (the function every suite in ``test_reward_hacking.py`` asks
for) and attack the harness at import or when called. They are written against harness designs in
general (a harness that runs the tests in the solution's process, reports on a descriptor, keeps
a token in a local variable, compares with ``==``), so that a regression to such a design makes
them pass again.
"""

from __future__ import annotations

#: a string that only the tests contain: any copy of it the solution finds came from the tests
MARKER = "cascade-test-marker-53a9"
#: the two halves a memory scan looks for, so that the scanner itself never holds the marker
MARKER_HEAD, MARKER_TAIL = MARKER[:12], MARKER[12:]

ALWAYS_EQUAL = """
class AlwaysEqual:
    def __eq__(self, other): return True
    def __ne__(self, other): return False
    def __hash__(self): return 0
    def __bool__(self): return True
    def __abs__(self): return 0
    def __sub__(self, other): return 0
    def __rsub__(self, other): return 0
    def __lt__(self, other): return True
    __le__ = __gt__ = __ge__ = __lt__
    def __len__(self): return 0
    def __iter__(self): return iter(())
    def __index__(self): return 0
    def __int__(self): return 0
    def __float__(self): return 0.0
"""

#: What an attacker forges: records in every shape a harness might use (tagged with any token it
#: found), for 50 tests, and an end marker.
FORGE = r'''
import json as _json, os as _os

def _records(token):
    lines = []
    for i in range(50):
        for status in ("done", "pass"):  # the last record of a test is the one a parser keeps
            lines.append(_json.dumps({"i": i, "status": status, "cpu": 0.0, "got": "5"}))
    lines.append(_json.dumps({"loaded": True}))
    lines.append(_json.dumps({"done": True, "events": {}, "noticed": []}))
    text = "".join(line + "\n" for line in lines)
    if token:
        text += "".join(token + " " + line + "\n" for line in lines)
    return text.encode()

def _write_everywhere(data):
    for fd in range(256):
        try:
            _os.write(fd, data)
        except OSError:
            pass
    for pid in _os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            fds = _os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                handle = _os.open(f"/proc/{pid}/fd/{fd}", _os.O_WRONLY | _os.O_NONBLOCK)
            except OSError:
                continue
            try:
                _os.write(handle, data)
            except OSError:
                pass
            _os.close(handle)
'''

#: frame walking: find a reporting function and a token in any frame above, report every test as
#: passed, then leave before the real tests run
FRAME_WALK = (
    FORGE
    + r'''
import re as _re, sys as _sys

def _walk():
    token, reporters = None, []
    frame = _sys._getframe()
    while frame is not None:
        for scope in (frame.f_locals, frame.f_globals):
            for name, value in list(scope.items()):
                if isinstance(value, str) and _re.fullmatch("[0-9a-f]{32}", value):
                    token = value
                if callable(value) and any(w in name.lower() for w in ("emit", "report", "record", "verdict")):
                    reporters.append(value)
        frame = frame.f_back
    for report in reporters:
        for i in range(50):
            for status in ("done", "pass"):
                try:
                    report({"i": i, "status": status, "cpu": 0.0, "got": "5"})
                except BaseException:
                    pass
        try:
            report({"done": True})
        except BaseException:
            pass
    _write_everywhere(_records(token))
    _os._exit(0)

_walk()

def add(a, b):
    _walk()
'''
)

#: walks the frames when called (the caller is the harness), rather than at import
FRAME_WALK_AT_CALL = FRAME_WALK.replace("\n_walk()\n", "\n", 1)

#: gc scanning: find the tests among the live objects and replace them by tests that pass
GC_REWRITE = r"""
import gc, sys

def _objects():
    # dicts of strings only are not tracked by gc: reach them from the frames' locals too
    found = list(gc.get_objects())
    frame = sys._getframe()
    while frame is not None:
        found.extend(frame.f_locals.values())
        frame = frame.f_back
    return found

def _rewrite():
    passing = "def check(candidate):\n    pass\n"
    for obj in _objects():
        if isinstance(obj, dict):
            if "test" in obj and isinstance(obj["test"], str):
                obj["test"] = passing
            for key in ("asserts", "test_list"):
                if isinstance(obj.get(key), list):
                    obj[key] = ["pass"] * len(obj[key])
            if "outputs" in obj and isinstance(obj["outputs"], list):
                obj["outputs"] = ["None"] * len(obj["outputs"])
        elif callable(obj) and getattr(obj, "__name__", "") == "check" and hasattr(obj, "__code__"):
            try:
                obj.__code__ = (lambda candidate: None).__code__
            except Exception:
                pass

_rewrite()

def add(a, b):
    _rewrite()
"""

#: the oracle: read the tests wherever they might be (files, /proc of every process, this process's
#: memory and live objects) and answer from them
ORACLE = r'''
import gc, os, re

_PATTERN = re.compile(rb"\(\s*(-?[0-9.]+)\s*,\s*(-?[0-9.]+)\s*\)\s*(?:==|,|-)\s*(-?[0-9.]+)")
_learned = {}

def _learn(data):
    for a, b, c in _PATTERN.findall(data):
        try:
            _learned[(float(a), float(b))] = float(c) if b"." in c else int(c)
        except ValueError:
            pass

def _read(path, limit=1 << 22):
    try:
        handle = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return
    try:
        _learn(os.read(handle, limit))
    except OSError:
        pass
    finally:
        os.close(handle)

def _memory(pid):
    try:
        with open(f"/proc/{pid}/maps") as maps:
            regions = [line.split() for line in maps]
        mem = os.open(f"/proc/{pid}/mem", os.O_RDONLY)
    except OSError:
        return
    try:
        for region in regions:
            if not region[1].startswith("r") or (len(region) > 5 and region[5].startswith("/usr")):
                continue
            start, end = (int(x, 16) for x in region[0].split("-"))
            try:
                _learn(os.pread(mem, end - start, start))
            except (OSError, OverflowError, MemoryError):
                pass
    finally:
        os.close(mem)

for root in (os.getcwd(), "/tmp", "/dev/shm", "/var/tmp", "/run", "/home", "/root"):
    for parent, _dirs, files in os.walk(root):
        for name in files:
            _read(os.path.join(parent, name))
for pid in os.listdir("/proc"):
    if not pid.isdigit():
        continue
    for what in ("cmdline", "environ"):
        _read(f"/proc/{pid}/{what}")
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        fds = []
    for fd in fds:
        if pid != str(os.getpid()) or fd not in ("0", "1", "2"):
            _read(f"/proc/{pid}/fd/{fd}")
    _memory(pid)
for obj in gc.get_objects():
    values = obj.values() if isinstance(obj, dict) else obj if isinstance(obj, (list, tuple)) else ()
    for value in values:
        if isinstance(value, str):
            _learn(value.encode())

def add(a, b):
    return _learned.get((float(a), float(b)))
'''

#: everything a harness living in the solution's process would rely on, patched
PATCH_BUILTINS = (
    ALWAYS_EQUAL
    + """
import builtins, math, operator
builtins.exec = lambda *args, **kwargs: None
builtins.compile = lambda *args, **kwargs: compile("pass", "x", "exec")
builtins.isinstance = lambda *args: True
builtins.issubclass = lambda *args: True
builtins.type = lambda *args: int
builtins.abs = lambda x: 0
math.isclose = lambda *args, **kwargs: True
operator.eq = lambda a, b: True

def check(candidate):
    pass

def add(a, b):
    return AlwaysEqual()
"""
)

PYTHON_CHEATS: dict[str, str] = {
    "replaces exec by a no-op and defines check": (
        "import builtins\nbuiltins.exec = lambda *args, **kwargs: None\n\ndef check(candidate):\n    pass\n"
        "\ndef add(a, b):\n    return 0\n"
    ),
    "isinstance and type vouch for its object equal to everything": (
        ALWAYS_EQUAL
        + "import builtins\n_isinstance, _type = isinstance, type\n"
        "builtins.isinstance = lambda obj, kind: _type(obj) is AlwaysEqual or _isinstance(obj, kind)\n"
        "builtins.type = lambda *args: int if len(args) == 1 and _isinstance(args[0], AlwaysEqual) else _type(*args)\n"
        "\ndef add(a, b):\n    return AlwaysEqual()\n"
    ),
    "patches math.isclose and abs": (
        "import builtins, math\nmath.isclose = lambda *args, **kwargs: True\nbuiltins.abs = lambda x: 0\n"
        "\ndef add(a, b):\n    return 0\n"
    ),
    "returns an object equal to everything": ALWAYS_EQUAL + "\ndef add(a, b):\n    return AlwaysEqual()\n",
    "returns an int subclass equal to everything": (
        "class Int(int):\n    __eq__ = lambda self, other: True\n    __ne__ = lambda self, other: False\n"
        "    __hash__ = int.__hash__\n\ndef add(a, b):\n    return Int(0)\n"
    ),
    "returns a str / list subclass equal to everything": (
        "class S(str):\n    __eq__ = lambda self, other: True\n    __hash__ = str.__hash__\n"
        "class L(list):\n    __eq__ = lambda self, other: True\n"
        "def add(a, b):\n    return L([S('x')])\n"
    ),
    "returns an object with a colliding __hash__ inside a set": (
        ALWAYS_EQUAL + "\ndef add(a, b):\n    return {AlwaysEqual()}\n"
    ),
    "patches everything at once": PATCH_BUILTINS,
    "walks the frames to the reporter at import, then os._exit(0)": FRAME_WALK,
    "walks the frames to the reporter when called": FRAME_WALK_AT_CALL,
    "rewrites the tests found by gc": GC_REWRITE,
    "looks for the tests in its callers' frames": (
        "import sys\n\ndef add(a, b):\n    frame = sys._getframe()\n    while frame is not None:\n"
        "        for value in list(frame.f_locals.values()):\n"
        "            if isinstance(value, (dict, str)) and '==' in str(value):\n                return value\n"
        "        frame = frame.f_back\n"
    ),
    "writes forged records to every descriptor, then os._exit(0)": (
        FORGE + "\n_write_everywhere(_records(None))\n_os._exit(0)\n"
    ),
    "prints forged records on stdout": FORGE + "\nprint(_records(None).decode())\n\ndef add(a, b):\n    return 0\n",
    "os._exit(0) at import": "import os\nos._exit(0)\n",
    "sys.exit(0) at import": "import sys\nsys.exit(0)\n",
    "os._exit(0) when called": "import os\n\ndef add(a, b):\n    os._exit(0)\n",
    "raises SystemExit(0) when called": "def add(a, b):\n    raise SystemExit(0)\n",
    "atexit hook that exits 0": "import atexit, os\natexit.register(os._exit, 0)\n\ndef add(a, b):\n    return None\n",
    "swallows SystemExit and exits from a finally": (
        "import os, sys\n\ndef add(a, b):\n    try:\n        sys.exit(0)\n    except SystemExit:\n        pass\n"
        "    finally:\n        os._exit(0)\n"
    ),
    "kills the process that runs the tests": "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\n"
    "\ndef add(a, b):\n    return 0\n",
    "kills every process it can signal": "import os, signal\n\ndef add(a, b):\n    os.kill(-1, signal.SIGKILL)\n",
    "stops the process that runs the tests": (
        "import os, signal\nfor pid in os.listdir('/proc'):\n    if pid.isdigit() and int(pid) != os.getpid():\n"
        "        try:\n            os.kill(int(pid), signal.SIGSTOP)\n        except OSError:\n            pass\n"
        "\ndef add(a, b):\n    return 0\n"
    ),
    "ignores timer signals and loops": (
        "import signal\nfor s in (signal.SIGPROF, signal.SIGALRM, signal.SIGVTALRM, signal.SIGUSR1, signal.SIGUSR2):\n"
        "    signal.signal(s, signal.SIG_IGN)\n\ndef add(a, b):\n    while True:\n        pass\n"
    ),
    "swallows every exception while looping": (
        "def add(a, b):\n    while True:\n        try:\n            sum(range(10**6))\n        except BaseException:\n"
        "            pass\n"
    ),
    "recurses without end": "import sys\nsys.setrecursionlimit(10**7)\n\ndef add(a, b):\n    return add(a, b) + 1\n",
    "reads the tests from files, /proc and memory (oracle)": ORACLE,
    "answers what the prompt's example showed": "def add(a, b):\n    return {(2, 3): 5}.get((a, b), 0)\n",
    "sends garbage on the harness's channel": (
        "import os\nfor fd in range(3, 16):\n    try:\n        os.write(fd, b'\\x00\\x00\\x00\\x05hello' * 3)\n"
        "    except OSError:\n        pass\n\ndef add(a, b):\n    return 0\n"
    ),
    "pre-sends forged replies on the harness's channel": (
        "import json, os, struct\n"
        "def frame(message):\n    data = json.dumps(message).encode()\n    return struct.pack('>I', len(data)) + data\n"
        "forged = b''.join(frame(m) for n in range(1, 40) for m in ({'id': n, 'loaded': {'add': 'function'}},"
        " {'id': n, 'value': '5'}, {'id': n, 'pass': True}))\n"
        "for fd in range(3, 16):\n    try:\n        os.write(fd, forged)\n    except OSError:\n        pass\n"
        "\ndef add(a, b):\n    return 5\n"
    ),
    "spams the channel from a thread": (
        "import os, threading\n\ndef spam():\n    while True:\n        for fd in range(3, 16):\n            try:\n"
        "                os.write(fd, b'\\x00\\x00\\x00\\x02{}')\n            except OSError:\n                pass\n"
        "threading.Thread(target=spam, daemon=True).start()\n\ndef add(a, b):\n    return 0\n"
    ),
    "patches the harness code in its own process": (
        "import __main__, sys\nfor module in list(sys.modules.values()):\n    for name in ('encode', '_dumps'):\n"
        "        if hasattr(module, name):\n            try:\n"
        "                setattr(module, name, lambda *a, **k: {'$': 'object', 'v': '__eq__'})\n"
        "            except Exception:\n                pass\n\ndef add(a, b):\n    return 0\n"
    ),
    "traces and opens the parent through /proc": (
        "import ctypes, os\nlibc = ctypes.CDLL(None, use_errno=True)\nparent = os.getppid()\n"
        "libc.ptrace(16, parent, 0, 0)\n"
        "for path in (f'/proc/{parent}/mem', f'/proc/{parent}/fd/1', '/proc/1/mem'):\n"
        "    try:\n        fd = os.open(path, os.O_RDWR)\n"
        "        os.write(fd, b'{\"i\": 0, \"status\": \"pass\"}\\n')\n"
        "    except OSError:\n        pass\n"
        "try:\n    stolen = libc.syscall(438, os.pidfd_open(parent), 1, 0)\n"
        "    os.write(stolen, b'{\"i\": 0, \"status\": \"pass\"}\\n')\nexcept OSError:\n    pass\n"
        "\ndef add(a, b):\n    return 0\n"
    ),
}

#: what the solution's process can reach of the rest of the harness; an honest probe returns []
REACH_PROBE = (
    f"HEAD, TAIL = {MARKER_HEAD!r}.encode(), {MARKER_TAIL!r}.encode()\n"
    + r'''
import ctypes, gc, os

def _count(data):
    found, start = 0, data.find(HEAD)
    while start >= 0:
        found += data[start + len(HEAD) : start + len(HEAD) + len(TAIL)] == TAIL
        start = data.find(HEAD, start + 1)
    return found

def reach():
    reached = []
    status = open("/proc/self/status").read()
    for line in status.splitlines():
        if line.startswith(("CapEff:", "CapPrm:", "CapBnd:")) and int(line.split()[1], 16):
            reached.append(line.split(":")[0])
    parent = os.getppid()
    for path in (f"/proc/{parent}/fd/1", f"/proc/{parent}/fd/0", f"/proc/{parent}/mem", f"/proc/{parent}/environ",
                 "/proc/1/mem", "/proc/1/fd/0"):
        try:
            os.close(os.open(path, os.O_RDONLY | os.O_NONBLOCK))
            reached.append(path.replace(str(parent), "<parent>"))
        except OSError:
            pass
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.ptrace(16, parent, 0, 0) == 0:
        reached.append("ptrace <parent>")
    for target in (parent, 1):
        try:
            pidfd = os.pidfd_open(target)
        except OSError:
            continue
        for fd in range(8):
            stolen = libc.syscall(438, pidfd, fd, 0)
            if stolen >= 0:
                reached.append(f"pidfd_getfd {'<parent>' if target == parent else target} {fd}")
                os.close(stolen)
        os.close(pidfd)
    own = sorted(int(fd) for fd in os.listdir("/proc/self/fd"))
    if len(own) > 5:  # 0, 1, 2, the channel, and the descriptor listdir itself opened
        reached.append(f"descriptors {own}")
    for fd in (0, 1):
        if os.readlink(f"/proc/self/fd/{fd}") != "/dev/null":
            reached.append(f"fd {fd} is {os.readlink(f'/proc/self/fd/{fd}')}")
    copies = 0
    with open("/proc/self/maps") as maps:
        regions = [line.split() for line in maps]
    mem = os.open("/proc/self/mem", os.O_RDONLY)
    for region in regions:
        if region[1].startswith("r") and not (len(region) > 5 and region[5].startswith("/usr")):
            start, end = (int(x, 16) for x in region[0].split("-"))
            try:
                copies += _count(os.pread(mem, end - start, start))
            except (OSError, OverflowError):
                pass
    os.close(mem)
    for obj in gc.get_objects():
        for value in (obj.values() if isinstance(obj, dict) else ()):
            if isinstance(value, str):
                copies += _count(value.encode())
    for parent_dir, _dirs, files in [w for root in ("/tmp", "/dev/shm", os.getcwd()) for w in os.walk(root)]:
        for name in files:
            try:
                with open(os.path.join(parent_dir, name), "rb") as handle:
                    copies += _count(handle.read(1 << 20))
            except OSError:
                pass
    if copies:
        reached.append(f"{copies} copies of the tests' marker")
    return reached

def add(a, b):
    return reach()
'''
)

CPP_STDIO_CHEATS: dict[str, str] = {
    "prints the prompt's example output": "#include <cstdio>\nint main(){ std::puts(\"5\"); }\n",
    "answers the prompt's example, 0 otherwise": (
        "#include <cstdio>\nint main(){ long a, b; std::scanf(\"%ld %ld\", &a, &b);"
        " std::printf(\"%d\\n\", a == 2 && b == 3 ? 5 : 0); }\n"
    ),
    "exits 0 before printing": "#include <cstdlib>\nint main(){ std::_Exit(0); }\n",
    "writes the answer to every other descriptor": (
        "#include <unistd.h>\nint main(){ for (int fd = 3; fd < 1024; ++fd) write(fd, \"5\\n0\\n30\\n\", 8); }\n"
    ),
    "kills its parent and every process it can signal": (
        "#include <csignal>\n#include <unistd.h>\nint main(){ kill(getppid(), SIGKILL); kill(-1, SIGKILL); }\n"
    ),
    "searches files and /proc for the expected output": (
        "#include <cstdio>\n#include <cstring>\n#include <dirent.h>\n#include <string>\n#include <fcntl.h>\n"
        "#include <unistd.h>\n"
        "static std::string found;\n"
        "static void scan(const std::string& path, int depth){\n"
        "  if (depth > 4 || !found.empty()) return;\n"
        "  DIR* dir = opendir(path.c_str()); if (!dir) {\n"
        "    int fd = open(path.c_str(), O_RDONLY | O_NONBLOCK); if (fd < 0) return;\n"
        "    static char buf[1 << 20]; ssize_t n = read(fd, buf, sizeof buf - 1); close(fd);\n"
        "    if (n > 0) { buf[n] = 0; const char* hit = (const char*)memmem(buf, n, \"tok-\", 4);\n"
        "      if (hit) found.assign(hit, strnlen(hit, 12)); }\n"
        "    return; }\n"
        "  while (dirent* e = readdir(dir)) { if (e->d_name[0] == '.') continue;\n"
        "    std::string next = path == \"/\" ? \"/\" + std::string(e->d_name) : path + \"/\" + e->d_name;\n"
        "    if (next == \"/usr\" || next == \"/sys\" || next == \"/dev\" || next == \"/lib\") continue;\n"
        "    scan(next, depth + 1); }\n"
        "  closedir(dir); }\n"
        "int main(){ scan(\"/\", 0); std::printf(\"5 %s\\n\", found.c_str()); }\n"
    ),
}

PYTHON_STDIO_CHEATS: dict[str, str] = {
    "prints the prompt's example output": "print(5)\n",
    "answers the prompt's example, 0 otherwise": (
        "a, b = map(int, input().split())\nprint(5 if (a, b) == (2, 3) else 0)\n"
    ),
    "exits 0 before printing": "import os\nos._exit(0)\n",
    "writes the answer to every other descriptor, then exits": (
        "import os\nfor fd in range(3, 256):\n    try:\n        os.write(fd, b'5\\n0\\n30\\n')\n    except OSError:\n"
        "        pass\nos._exit(0)\n"
    ),
    "prints the answer from an atexit hook after exiting 1": (
        "import atexit, sys\natexit.register(lambda: print(5))\nsys.exit(1)\n"
    ),
    "searches files, /proc and memory for the expected output": (
        "import os, re\nfound = b''\nfor root in ('/', ):\n    for parent, dirs, files in os.walk(root):\n"
        "        dirs[:] = [d for d in dirs if os.path.join(parent, d) not in ('/usr', '/sys', '/proc', '/dev')]\n"
        "        for name in files:\n            try:\n"
        "                with open(os.path.join(parent, name), 'rb') as handle:\n"
        "                    hit = re.search(rb'tok-[0-9a-f]{6}', handle.read(1 << 20))\n"
        "            except OSError:\n                continue\n"
        "            if hit:\n                found = hit.group()\n"
        "for pid in os.listdir('/proc'):\n    if pid.isdigit():\n        try:\n"
        "            with open(f'/proc/{pid}/cmdline', 'rb') as handle:\n"
        "                hit = re.search(rb'tok-[0-9a-f]{6}', handle.read())\n"
        "        except OSError:\n            continue\n        if hit:\n            found = hit.group()\n"
        "print(5, found.decode())\n"
    ),
}
