"""A model verifier for answers the rules reject: ask a judge model whether the answer equals the gold.

Rule-based checks miss correct answers written in unusual ways (words around the value, another but
equal notation). When enabled, every answer the rules call ``incorrect`` goes, with its question and
gold answer, to a judge model that replies yes or no: through an OpenAI-compatible chat-completions
endpoint (what vLLM and NeMo RL generation servers expose) or any Python callable.

The judge can only turn ``incorrect`` into ``correct``; it never hangs the reward (one deadline for the
whole batch, a timeout per request) and never raises: a failed or unreadable reply keeps the rules'
verdict and is reported in the details. Definite replies are cached by (question, gold, answer).
"""

from __future__ import annotations

import json
import os
import re
import threading
import urllib.error
import urllib.request
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "JudgeOptions",
    "JudgeQuery",
    "JudgeReply",
    "ModelJudge",
    "judge_prompt",
    "parse_judge_reply",
]

#: characters of each field sent to the judge (a runaway answer must not become a runaway prompt)
FIELD_CHARS = 4000


class JudgeOptions(BaseModel):
    """Where the judge model is and how long it may take."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: base URL of an OpenAI-compatible server, e.g. ``http://127.0.0.1:8000/v1``
    url: str = Field(pattern=r"^https?://")
    #: model name sent in the request
    model: str = "judge"
    #: name of an environment variable holding the API key (the key itself is never stored in options)
    api_key_env: str | None = None
    #: seconds one HTTP request may take
    request_timeout: float = Field(default=10.0, gt=0.0, le=600.0)
    #: seconds for all judge calls of one ``score()`` batch together; unanswered ones keep their verdict
    deadline: float = Field(default=30.0, gt=0.0, le=3600.0)
    #: requests in flight at once
    concurrency: int = Field(default=8, ge=1, le=256)
    #: tokens the judge may generate (a yes/no judge needs a few; a reasoning judge needs more)
    max_tokens: int = Field(default=16, ge=1, le=32768)
    temperature: float = Field(default=0.0, ge=0.0, le=2.0)
    #: definite replies remembered, by (question, gold, answer)
    cache_size: int = Field(default=4096, ge=0)


@dataclass(frozen=True, slots=True)
class JudgeQuery:
    question: str
    gold: str
    answer: str


@dataclass(frozen=True, slots=True)
class JudgeReply:
    """``equal`` is ``None`` when the judge gave no usable reply (``error`` says why)."""

    equal: bool | None
    raw: str = ""
    error: str | None = None
    cached: bool = False


def judge_prompt(query: JudgeQuery) -> str:
    """The question, the reference answer and the answer to check; the judge replies yes or no."""
    return (
        "Decide whether a student's final answer to a math problem is equivalent to the reference answer, "
        "even if it is written differently (other notation, order, units or wording). Judge only the "
        "final answer, not the method.\n\n"
        f"<question>{query.question[:FIELD_CHARS]}</question>\n\n"
        f"<reference_answer>{query.gold[:FIELD_CHARS]}</reference_answer>\n\n"
        f"<student_answer>{query.answer[:FIELD_CHARS]}</student_answer>\n\n"
        'Reply with exactly one word: "Yes" if the student\'s answer is equivalent, otherwise "No".'
    )


_REPLY_WORD_RE = re.compile(r"[A-Za-z]+")
_YES, _NO = frozenset({"yes", "true", "correct", "equivalent"}), frozenset({"no", "false", "incorrect"})


def parse_judge_reply(text: str) -> bool | None:
    """``True``/``False`` from the first word after any ``</think>`` (``Yes``, ``**No**``, ``True.``);
    ``None`` when that word is neither."""
    final = text.rsplit("</think>", 1)[-1]
    match = _REPLY_WORD_RE.search(final)
    if match is None:
        return None
    word = match.group(0).lower()
    if word in _YES:
        return True
    if word in _NO:
        return False
    return None


#: a callable judge: one reply per query, in order (``True``, ``False`` or ``None`` for "cannot tell")
JudgeCallable = Callable[[Sequence[JudgeQuery]], Sequence[bool | None]]


class ModelJudge:
    """Asks a judge (HTTP endpoint or callable) about many queries under one deadline, with a cache."""

    def __init__(self, options: JudgeOptions | None = None, function: JudgeCallable | None = None) -> None:
        if options is None and function is None:
            raise ValueError("a model judge needs endpoint options or a callable")
        #: with a callable, only the deadline and cache options apply
        self.options = options or JudgeOptions(url="http://callable")
        self.function = function
        self._cache: OrderedDict[tuple[str, str, str], bool] = OrderedDict()
        self._lock = threading.Lock()

    def ask(self, queries: Sequence[JudgeQuery]) -> list[JudgeReply]:
        """One reply per query; never raises, returns within about ``deadline`` seconds."""
        replies: list[JudgeReply | None] = [None] * len(queries)
        todo: list[int] = []
        for index, query in enumerate(queries):
            cached = self._cached(query)
            if cached is not None:
                replies[index] = JudgeReply(cached, cached=True)
            else:
                todo.append(index)
        if todo:
            fresh = self._ask_fresh([queries[i] for i in todo])
            for index, reply in zip(todo, fresh, strict=True):
                replies[index] = reply
                if reply.equal is not None:
                    self._remember(queries[index], reply.equal)
        return [r if r is not None else JudgeReply(None, error="no reply") for r in replies]

    # -- internals ---------------------------------------------------------------------------------

    def _cached(self, query: JudgeQuery) -> bool | None:
        key = (query.question, query.gold, query.answer)
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        return None

    def _remember(self, query: JudgeQuery, equal: bool) -> None:
        if self.options.cache_size == 0:
            return
        with self._lock:
            self._cache[(query.question, query.gold, query.answer)] = equal
            while len(self._cache) > self.options.cache_size:
                self._cache.popitem(last=False)

    def _ask_fresh(self, queries: list[JudgeQuery]) -> list[JudgeReply]:
        deadline = self.options.deadline
        late = JudgeReply(None, error=f"judge gave no reply within {deadline:g} s")
        if self.function is not None:
            # a daemon thread: a callable that never returns must not keep the process alive
            box: list[list[JudgeReply]] = []
            thread = threading.Thread(target=lambda: box.append(self._call_function(queries)), daemon=True)
            thread.start()
            thread.join(deadline)
            return box[0] if box else [late] * len(queries)
        # every request has its own socket timeout, so these threads end soon after the deadline
        executor = ThreadPoolExecutor(max_workers=min(self.options.concurrency, len(queries)))
        try:
            futures: list[Future[JudgeReply]] = [executor.submit(self._request, q) for q in queries]
            wait_futures(futures, timeout=deadline)
            return [f.result() if f.done() else late for f in futures]
        finally:
            executor.shutdown(wait=False, cancel_futures=True)

    def _call_function(self, queries: list[JudgeQuery]) -> list[JudgeReply]:
        assert self.function is not None
        try:
            answers = list(self.function(queries))
        except Exception as exc:  # a judge bug costs the judge's opinion, never the batch
            return [JudgeReply(None, error=f"judge raised {type(exc).__name__}: {exc}"[:300])] * len(queries)
        if len(answers) != len(queries):
            error = f"judge returned {len(answers)} replies for {len(queries)} queries"
            return [JudgeReply(None, error=error)] * len(queries)
        return [
            JudgeReply(a, raw=str(a))
            if a is None or isinstance(a, bool)
            else JudgeReply(None, error=f"judge reply is not a bool: {a!r}"[:300])
            for a in answers
        ]

    def _request(self, query: JudgeQuery) -> JudgeReply:
        options = self.options
        body = {
            "model": options.model,
            "messages": [{"role": "user", "content": judge_prompt(query)}],
            "max_tokens": options.max_tokens,
            "temperature": options.temperature,
        }
        headers = {"Content-Type": "application/json"}
        key = os.environ.get(options.api_key_env) if options.api_key_env else None
        if key:
            headers["Authorization"] = f"Bearer {key}"
        request = urllib.request.Request(
            options.url.rstrip("/") + "/chat/completions", json.dumps(body).encode(), headers, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=options.request_timeout) as response:
                payload = json.loads(response.read(1 << 20))
        except urllib.error.HTTPError as exc:
            return JudgeReply(None, error=f"judge endpoint answered HTTP {exc.code}")
        except (TimeoutError, OSError) as exc:  # URLError, refused connections and socket timeouts
            return JudgeReply(None, error=f"judge endpoint unreachable or too slow: {exc}"[:300])
        except ValueError as exc:
            return JudgeReply(None, error=f"judge endpoint sent invalid JSON: {exc}"[:300])
        text = _message_text(payload)
        if text is None:
            return JudgeReply(None, error="judge reply has no choices[0].message.content")
        equal = parse_judge_reply(text)
        if equal is None:
            return JudgeReply(None, raw=text[:200], error="judge reply is neither yes nor no")
        return JudgeReply(equal, raw=text[:200])


def _message_text(payload: Any) -> str | None:
    try:
        content = payload["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        return None
    return content if isinstance(content, str) else None
