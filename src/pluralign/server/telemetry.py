"""What the service is doing, for an operator: Prometheus metrics and one log line per request.

Each service has its own registry (two apps in one process never mix their counts). Labels are
bounded: a route is its template (``/v1/users/{user}/profile``), never the path a client sent,
so neither a user's name nor anything a client puts in a URL becomes a metric label. The
request log line carries the request id, route, status, duration, namespace and the user label
a request names; never a header, a query string, a body or a response text, so no key and no
message reaches the log.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Callable
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from pluralign.api import ChooseResult
from pluralign.prediction.generators import Candidates
from pluralign.support.redact import redact

REQUEST_LOG = logging.getLogger("pluralign.requests")
REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
"""A client's own ``X-Request-Id`` is kept when it looks like an id; anything else is replaced."""
SECONDS = (0.005, 0.05, 0.25, 1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600)
CONTENT_TYPE = CONTENT_TYPE_LATEST


def request_id(given: str | None) -> str:
    return given if given is not None and REQUEST_ID.fullmatch(given) else uuid.uuid4().hex


class Telemetry:
    """The service's metrics (``/metrics``) and request log."""

    def __init__(self, queue_depth: Callable[[], int]) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "pluralign_requests", "Requests answered, by route and status.", ["route", "status"], registry=r
        )
        self.latency = Histogram(
            "pluralign_request_seconds",
            "Seconds to answer a request, by route.",
            ["route"],
            buckets=SECONDS,
            registry=r,
        )
        self.stages = Histogram(
            "pluralign_stage_seconds",
            "Seconds of the heavy stages: generation (a chat's candidates), judging (a decision's assessment "
            "and choice), profile (a fit).",
            ["stage"],
            buckets=SECONDS,
            registry=r,
        )
        self.tokens = Counter(
            "pluralign_tokens",
            "Tokens read (prompt) and written (completion), by stage.",
            ["stage", "kind"],
            registry=r,
        )
        self.judge_calls = Counter(
            "pluralign_judge_calls",
            "Judge calls a decision needed, by who answered: the model or the judgement cache.",
            ["answered_by"],
            registry=r,
        )
        self.queue = Gauge("pluralign_queue_depth", "Decisions queued or running now.", registry=r)
        self.queue.set_function(queue_depth)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)

    def request(self, record: dict[str, Any]) -> None:
        """Count a finished request and write its log line."""
        self.requests.labels(record["route"], str(record["status"])).inc()
        self.latency.labels(record["route"]).observe(record["seconds"])
        REQUEST_LOG.info(redact(json.dumps(record, ensure_ascii=True)))  # a key sent as an id or a user name

    def work(self, stage: str, seconds: float, result: Any) -> None:
        """One finished job of a stage: its time; a decision's judge calls and tokens, a
        generation's tokens."""
        self.stages.labels(stage).observe(seconds)
        if isinstance(result, ChooseResult):
            self.judge_calls.labels("model").inc(result.llm_calls)
            self.judge_calls.labels("cache").inc(result.cached_calls)
            self.tokens.labels(stage, "prompt").inc(result.prompt_tokens)
            self.tokens.labels(stage, "completion").inc(result.completion_tokens)
        elif isinstance(result, Candidates):
            self.tokens.labels(stage, "prompt").inc(result.usage.prompt_tokens)
            self.tokens.labels(stage, "completion").inc(result.usage.completion_tokens)
