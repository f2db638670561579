"""testlib's standard checkers (``MikeMirzayanov/testlib/checkers``) with testlib's semantics.

A reading error in the contestant's output is ``PE`` ("wrong output format"), in the judge's
answer ``JE`` (testlib's ``FAIL``). As in testlib, a checker that accepts still rejects with
``PE`` when the output has anything but white space left ("extra information in the output
file"). White space is testlib's: space, tab, CR, LF.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable

from cascade_plugins.rewards.competition.checkers.outcome import CheckOutcome

_BLANKS = b" \t\r\n"
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1
_STRTOD_DECIMAL = re.compile(rb"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_HUGE_INTEGER = re.compile(rb"0|-?[1-9][0-9]*")


class _Quit(Exception):
    def __init__(self, verdict: str, message: str) -> None:
        super().__init__(message)
        self.verdict = verdict
        self.message = message


def _show(token: bytes) -> str:
    text = token.decode("utf-8", "replace")
    return text if len(text) <= 64 else text[:61] + "..."


class _Stream:
    """testlib's non-strict ``InStream`` over a byte string."""

    def __init__(self, data: bytes, *, is_output: bool) -> None:
        self.data = data
        self.pos = 0
        self.is_output = is_output

    def quit(self, verdict: str, message: str) -> _Quit:
        # Reading errors in the answer (or input) are the problem's fault: FAIL.
        return _Quit(verdict if self.is_output else "JE", message if self.is_output else f"answer: {message}")

    def skip_blanks(self) -> None:
        while self.pos < len(self.data) and self.data[self.pos] in _BLANKS:
            self.pos += 1

    def eof(self) -> bool:
        return self.pos >= len(self.data)

    def seek_eof(self) -> bool:
        self.skip_blanks()
        return self.eof()

    def read_word(self) -> bytes:
        self.skip_blanks()
        if self.eof():
            raise self.quit("PE", "unexpected end of file - token expected")
        start = self.pos
        while self.pos < len(self.data) and self.data[self.pos] not in _BLANKS:
            self.pos += 1
        return self.data[start : self.pos]

    def read_line(self) -> bytes:
        end = self.data.find(b"\n", self.pos)
        if end < 0:
            line, self.pos = self.data[self.pos :], len(self.data)
        else:
            line, self.pos = self.data[self.pos : end], end + 1
        return line[:-1] if line.endswith(b"\r") else line

    def read_long(self, what: str = "int64") -> int:
        if self.seek_eof():
            raise self.quit("PE", f"unexpected end of file - {what} expected")
        token = self.read_word()
        bad = self.quit("PE", f"expected integer, but {_show(token)!r} found")
        if not 0 < len(token) <= 20:
            raise bad
        negative = len(token) > 1 and token[:1] == b"-"
        digits = token[1:] if negative else token
        if not digits.isdigit():
            raise bad
        value = int(token)
        zeroes = len(digits) - len(digits.lstrip(b"0"))
        if not _INT64_MIN <= value <= _INT64_MAX or (zeroes > 0 and (value != 0 or negative)) or zeroes > 1:
            raise bad
        return value

    def read_int(self) -> int:
        value = self.read_long("int32")
        if not _INT32_MIN <= value <= _INT32_MAX:
            raise self.quit("PE", f"expected int32, but {value} found")
        return value

    def read_double(self) -> float:
        if self.seek_eof():
            raise self.quit("PE", "unexpected end of file - double expected")
        token = self.read_word()
        bad = self.quit("PE", f"expected double, but {_show(token)!r} found")
        if any(c not in b"0123456789.eE-+" for c in token):
            raise bad
        counts = {c: token.count(c.encode()) for c in "-+.eE"}
        if (
            not any(c in b"0123456789" for c in token)
            or counts["-"] > 2
            or counts["+"] > 2
            or counts["."] > 1
            or counts["e"] + counts["E"] > 1
            or not _STRTOD_DECIMAL.fullmatch(token)
        ):
            raise bad
        return float(token)  # may be inf when it overflows, as strtod gives


def double_compare(expected: float, result: float, max_error: float) -> bool:
    """testlib's ``doubleCompare``: absolute or relative error at most ``max_error`` (+1e-15)."""
    max_error += 1e-15
    if math.isnan(expected):
        return math.isnan(result)
    if math.isinf(expected):
        return math.isinf(result) and (result > 0) == (expected > 0)
    if math.isnan(result) or math.isinf(result):
        return False
    if abs(result - expected) <= max_error:
        return True
    low, high = sorted((expected * (1.0 - max_error), expected * (1.0 + max_error)))
    return low <= result <= high


def _ordinal(n: int) -> str:
    if n % 100 in (11, 12, 13):
        return f"{n}th"
    return f"{n}{ {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th') }"


# -- the checkers (each raises _Quit for a rejection and returns the OK message) -----------------


def _wcmp(ouf: _Stream, ans: _Stream) -> str:
    n = 0
    while not ans.seek_eof() and not ouf.seek_eof():
        n += 1
        expected, found = ans.read_word(), ouf.read_word()
        if expected != found:
            raise _Quit("WA", f"{_ordinal(n)} words differ - expected: {_show(expected)!r}, found: {_show(found)!r}")
    if ans.seek_eof() and ouf.seek_eof():
        return f"{n} tokens"
    if ans.seek_eof():
        raise _Quit("WA", "participant output contains extra tokens")
    raise _Quit("WA", "unexpected EOF in the participant's output")


def _line_checker(compare: Callable[[bytes, bytes], bool]) -> Callable[[_Stream, _Stream], str]:
    def check(ouf: _Stream, ans: _Stream) -> str:
        n = 0
        while not ans.eof():
            expected = ans.read_line()
            if not expected and ans.eof():
                break
            found = ouf.read_line()
            n += 1
            if not compare(expected, found):
                raise _Quit(
                    "WA", f"{_ordinal(n)} lines differ - expected: {_show(expected)!r}, found: {_show(found)!r}"
                )
        return f"{n} lines"

    return check


def _sequence_of(read: str) -> Callable[[_Stream, _Stream], str]:
    def check(ouf: _Stream, ans: _Stream) -> str:
        n = 0
        while not ans.seek_eof() and not ouf.seek_eof():
            n += 1
            expected, found = getattr(ans, read)(), getattr(ouf, read)()
            if expected != found:
                raise _Quit("WA", f"{_ordinal(n)} numbers differ - expected: {expected}, found: {found}")
        extra_ans = extra_ouf = 0
        while not ans.seek_eof():
            getattr(ans, read)()
            extra_ans += 1
        while not ouf.seek_eof():
            getattr(ouf, read)()
            extra_ouf += 1
        if extra_ans:
            raise _Quit("WA", f"answer contains longer sequence [length = {n + extra_ans}], but output contains {n}")
        if extra_ouf:
            raise _Quit("WA", f"output contains longer sequence [length = {n + extra_ouf}], but answer contains {n}")
        return f"{n} numbers"

    return check


def _uncmp(ouf: _Stream, ans: _Stream) -> str:
    expected: list[int] = []
    found: list[int] = []
    while not ans.seek_eof():
        expected.append(ans.read_long())
    while not ouf.seek_eof():
        found.append(ouf.read_long())
    if len(expected) != len(found):
        raise _Quit("WA", f"expected {len(expected)} elements, but {len(found)} found")
    if sorted(expected) != sorted(found):
        raise _Quit("WA", f"expected sequence and output are different (as unordered sequences) [size={len(found)}]")
    return f"{len(found)} numbers"


def _icmp(ouf: _Stream, ans: _Stream) -> str:
    expected, found = ans.read_int(), ouf.read_int()
    if expected != found:
        raise _Quit("WA", f"expected {expected}, found {found}")
    return f"answer is {expected}"


def _hcmp(ouf: _Stream, ans: _Stream) -> str:
    expected, found = ans.read_word(), ouf.read_word()
    if not _HUGE_INTEGER.fullmatch(expected):
        raise _Quit("JE", f"answer: {_show(expected)} is not a valid integer")
    if not ans.seek_eof():
        raise _Quit("JE", "answer: expected exactly one token in the answer file")
    if not _HUGE_INTEGER.fullmatch(found):
        raise _Quit("PE", f"{_show(found)} is not a valid integer")
    if expected != found:
        raise _Quit("WA", f"expected {_show(expected)!r}, found {_show(found)!r}")
    return f"answer is {_show(expected)!r}"


def _one_double(eps: float, *, relative: bool) -> Callable[[_Stream, _Stream], str]:
    def check(ouf: _Stream, ans: _Stream) -> str:
        expected, found = ans.read_double(), ouf.read_double()
        ok = double_compare(expected, found, eps) if relative else abs(expected - found) <= eps + 1e-15
        if not ok:
            raise _Quit("WA", f"expected {expected:.10f}, found {found:.10f}")
        return f"answer is {expected:.10f}"

    return check


def _double_sequence(eps: float, *, relative: bool) -> Callable[[_Stream, _Stream], str]:
    def check(ouf: _Stream, ans: _Stream) -> str:
        n = 0
        while not ans.seek_eof():
            n += 1
            expected, found = ans.read_double(), ouf.read_double()
            ok = double_compare(expected, found, eps) if relative else abs(expected - found) <= eps + 1e-15
            if not ok:
                raise _Quit("WA", f"{_ordinal(n)} numbers differ - expected: {expected:.10f}, found: {found:.10f}")
        return f"{n} numbers"

    return check


def _yes_or_no(stream: _Stream, where: str) -> bytes:
    word = stream.read_word().upper()
    if word not in (b"YES", b"NO"):
        raise stream.quit("PE", f"YES or NO expected{where}, but {_show(word)} found")
    return word


def _yesno(ouf: _Stream, ans: _Stream) -> str:
    expected, found = _yes_or_no(ans, ""), _yes_or_no(ouf, "")
    if expected != found:
        raise _Quit("WA", f"expected {expected.decode()}, found {found.decode()}")
    return f"answer is {expected.decode()}"


def _nyesno(ouf: _Stream, ans: _Stream) -> str:
    n = 0
    while not ans.seek_eof() and not ouf.seek_eof():
        n += 1
        where = f" [{_ordinal(n)} token]"
        expected, found = _yes_or_no(ans, where), _yes_or_no(ouf, where)
        if expected != found:
            raise _Quit("WA", f"expected {expected.decode()}, found {found.decode()}{where}")
    extra_ans = extra_ouf = 0
    while not ans.seek_eof():
        ans.read_word()
        extra_ans += 1
    while not ouf.seek_eof():
        ouf.read_word()
        extra_ouf += 1
    if extra_ans:
        raise _Quit("WA", f"answer contains longer sequence [length = {n + extra_ans}], but output contains {n}")
    if extra_ouf:
        raise _Quit("WA", f"output contains longer sequence [length = {n + extra_ouf}], but answer contains {n}")
    return f"{n} token(s)"


Checker = Callable[[_Stream, _Stream], str]

#: name -> (checker, one-line description), as in testlib's ``checkers/`` folder.
STANDARD_CHECKERS: dict[str, tuple[Checker, str]] = {
    "wcmp": (_wcmp, "sequences of tokens"),
    "lcmp": (_line_checker(lambda a, b: a.split() == b.split()), "lines of tokens"),
    "fcmp": (_line_checker(lambda a, b: a == b), "lines, exactly"),
    "ncmp": (_sequence_of("read_long"), "ordered sequences of int64"),
    "uncmp": (_uncmp, "unordered sequences of int64"),
    "icmp": (_icmp, "one int32"),
    "hcmp": (_hcmp, "one huge integer"),
    "acmp": (_one_double(1.5e-6, relative=False), "one double, absolute error 1.5e-6"),
    "rcmp": (_one_double(1.5e-6, relative=False), "one double, absolute error 1.5e-6"),
    "dcmp": (_one_double(1e-6, relative=True), "one double, absolute or relative error 1e-6"),
    "rcmp4": (_double_sequence(1e-4, relative=True), "doubles, absolute or relative error 1e-4"),
    "rcmp6": (_double_sequence(1e-6, relative=True), "doubles, absolute or relative error 1e-6"),
    "rcmp9": (_double_sequence(1e-9, relative=True), "doubles, absolute or relative error 1e-9"),
    "rncmp": (_double_sequence(1.5e-5, relative=False), "doubles, absolute error 1.5e-5"),
    "yesno": (_yesno, "one YES or NO, case-insensitive"),
    "nyesno": (_nyesno, "sequence of YES/NO, case-insensitive"),
}


def standard_check(name: str, output: bytes, answer: bytes) -> CheckOutcome:
    """Run the standard checker ``name`` on the contestant's ``output`` against the ``answer``."""
    try:
        checker, _ = STANDARD_CHECKERS[name]
    except KeyError:
        raise ValueError(f"unknown standard checker {name!r} (known: {', '.join(STANDARD_CHECKERS)})") from None
    ouf = _Stream(output, is_output=True)
    ans = _Stream(answer, is_output=False)
    try:
        message = checker(ouf, ans)
    except _Quit as quit_:
        return CheckOutcome(quit_.verdict, quit_.message)
    if not ouf.seek_eof():
        return CheckOutcome("PE", "extra information in the output file")
    return CheckOutcome("AC", message)
