"""The model-verifier fallback, against a real HTTP server on 127.0.0.1 that plays an
OpenAI-compatible judge (a scripted one: it answers from the request's content), and with callables."""

from __future__ import annotations

import json
import pickle
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest

from cascade_plugins.interfaces import Sample
from cascade_plugins.rewards.math import MathReward
from cascade_plugins.rewards.math.judge import JudgeOptions, JudgeQuery, ModelJudge, parse_judge_reply
from cascade_plugins.rewards.math.options import OptionsError

#: student answers the scripted judge calls equal, and what it does for special answers
YES_ANSWERS = {"seven goats", "one half"}


class ScriptedJudge(BaseHTTPRequestHandler):
    requests: ClassVar[list[dict[str, Any]]] = []

    def log_message(self, *args: Any) -> None:  # keep test output clean
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        ScriptedJudge.requests.append({"path": self.path, "body": body, "auth": self.headers.get("Authorization")})
        prompt = body["messages"][0]["content"]
        answer = prompt.split("<student_answer>", 1)[1].split("</student_answer>", 1)[0]
        if answer == "slow":
            time.sleep(3)
        if answer == "server error":
            self.send_response(500)
            self.end_headers()
            return
        if answer == "not json":
            payload = b"<html>oops</html>"
        elif answer == "no choices":
            payload = json.dumps({"object": "chat.completion"}).encode()
        else:
            if answer == "rambling":
                text = "Let me think about whether these agree"
            elif answer in YES_ANSWERS:
                text = "<think>same value</think> Yes"
            else:
                text = "No."
            payload = json.dumps({"choices": [{"message": {"role": "assistant", "content": text}}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


@pytest.fixture()
def judge_url() -> Iterator[str]:
    ScriptedJudge.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), ScriptedJudge)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()


def _sample(answer: str, gold: str = "7", prompt: str = "How many goats?") -> Sample:
    return Sample(response=f"The answer is $\\boxed{{{answer}}}$.", prompt=prompt, ground_truth=gold)


def test_off_by_default() -> None:
    reward = MathReward()
    assert reward.options.judge is None
    result = reward.score([_sample("seven goats")])[0]
    assert result.verdict == "incorrect" and "judge" not in result.details


def test_http_judge_flips_only_rejected_answers(judge_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JUDGE_TEST_KEY", "secret-token")
    reward = MathReward(judge={"url": judge_url, "model": "tiny-judge", "api_key_env": "JUDGE_TEST_KEY"})
    results = reward.score([_sample("seven goats"), _sample("8"), _sample("7")])
    flipped, rejected, rule_correct = results
    assert (flipped.verdict, flipped.reward, flipped.details["method"]) == ("correct", 1.0, "judge")
    assert flipped.details["judge"]["reply"] == "yes" and flipped.details["judge"]["rules_method"] != "judge"
    assert (rejected.verdict, rejected.reward, rejected.details["judge"]["reply"]) == ("incorrect", 0.0, "no")
    assert rule_correct.verdict == "correct" and "judge" not in rule_correct.details  # never asked
    assert len(ScriptedJudge.requests) == 2
    request = ScriptedJudge.requests[0]
    assert request["path"] == "/v1/chat/completions" and request["auth"] == "Bearer secret-token"
    assert request["body"]["model"] == "tiny-judge"
    assert "How many goats?" in request["body"]["messages"][0]["content"]
    assert reward.judge_metrics == {"asked": 2, "flipped": 1, "failed": 0, "cached": 0}


def test_cache_answers_repeats_without_a_request(judge_url: str) -> None:
    reward = MathReward(judge={"url": judge_url})
    reward.score([_sample("seven goats"), _sample("8")])
    again = reward.score([_sample("seven goats"), _sample("8")])
    assert len(ScriptedJudge.requests) == 2
    assert [r.verdict for r in again] == ["correct", "incorrect"]
    assert all(r.details["judge"]["cached"] for r in again)
    assert reward.judge_metrics["cached"] == 2


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        ("server error", "HTTP 500"),
        ("not json", "invalid JSON"),
        ("no choices", "no choices"),
        ("rambling", "neither yes nor no"),
    ],
)
def test_bad_replies_keep_the_rules_verdict(judge_url: str, answer: str, error: str) -> None:
    reward = MathReward(judge={"url": judge_url})
    result = reward.score([_sample(answer)])[0]
    assert result.verdict == "incorrect" and result.reward == 0.0
    assert error in result.details["judge"]["error"]
    assert reward.judge_metrics["failed"] == 1


def test_slow_judge_hits_the_request_timeout(judge_url: str) -> None:
    reward = MathReward(judge={"url": judge_url, "request_timeout": 0.3})
    results = reward.score([_sample("slow"), _sample("one half", gold="0.5")])
    assert results[0].verdict == "incorrect" and "too slow" in results[0].details["judge"]["error"]
    # "one half" is judged on its own request, not held up by the slow one
    assert results[1].verdict == "correct" and results[1].details["method"] == "judge"


def test_slow_judge_hits_the_batch_deadline(judge_url: str) -> None:
    reward = MathReward(judge={"url": judge_url, "request_timeout": 10, "deadline": 0.5})
    start = time.monotonic()
    result = reward.score([_sample("slow")])[0]
    assert time.monotonic() - start < 2.5  # the 3 s reply is not waited for
    assert result.verdict == "incorrect" and "within 0.5 s" in result.details["judge"]["error"]


def test_unreachable_endpoint_is_an_error_not_a_crash() -> None:
    reward = MathReward(judge={"url": "http://127.0.0.1:9/v1", "request_timeout": 1})
    result = reward.score([_sample("seven goats")])[0]
    assert result.verdict == "incorrect" and "unreachable" in result.details["judge"]["error"]


def test_callable_judge_and_pickling() -> None:
    seen: list[JudgeQuery] = []

    def judge(queries: list[JudgeQuery]) -> list[bool | None]:
        seen.extend(queries)
        return [q.answer == "seven goats" for q in queries]

    reward = MathReward(judge=judge)
    results = reward.score([_sample("seven goats"), _sample("six goats")])
    assert [r.verdict for r in results] == ["correct", "incorrect"]
    assert seen[0] == JudgeQuery("How many goats?", "7", "seven goats")
    copy = pickle.loads(pickle.dumps(MathReward(judge={"url": "http://127.0.0.1:1/v1", "deadline": 2})))
    assert copy.options.judge is not None and copy.options.judge.deadline == 2


def test_callable_judge_failures_are_contained() -> None:
    def broken(queries: list[JudgeQuery]) -> list[bool]:
        raise RuntimeError("judge exploded")

    def hanging(queries: list[JudgeQuery]) -> list[bool]:
        time.sleep(30)
        return [True] * len(queries)

    def short(queries: list[JudgeQuery]) -> list[bool]:
        return []

    assert "judge exploded" in MathReward(judge=broken).score([_sample("x")])[0].details["judge"]["error"]
    assert "0 replies for 1" in MathReward(judge=short).score([_sample("x")])[0].details["judge"]["error"]
    slow = ModelJudge(JudgeOptions(url="http://unused", deadline=0.3), function=hanging)
    start = time.monotonic()
    reply = slow.ask([JudgeQuery("q", "1", "2")])[0]
    assert time.monotonic() - start < 2 and reply.equal is None and "within 0.3 s" in (reply.error or "")


def test_judge_options_are_validated() -> None:
    with pytest.raises(OptionsError, match=r"judge\.url"):
        MathReward(judge={"url": "ftp://nowhere"})
    with pytest.raises(OptionsError, match=r"judge\.timeout"):
        MathReward(judge={"url": "http://x", "timeout": 3})
    with pytest.raises(ValueError, match="endpoint options or a callable"):
        ModelJudge()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Yes", True),
        ("**No**", False),
        ("True.", True),
        ("<think>maybe no</think>\nYes", True),
        ("<think>yes</think> False", False),
        ("I am not sure", None),
        ("", None),
    ],
)
def test_parse_judge_reply(text: str, expected: bool | None) -> None:
    assert parse_judge_reply(text) is expected
