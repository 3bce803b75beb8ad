"""The service's shared state (config, the loaded method, the queue) and its FastAPI dependencies."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fastapi import HTTPException, Request

from pluralign.api import Chooser
from pluralign.errors import (
    BackendUnavailableError,
    ContextLengthError,
    DeadlineExceeded,
    InputError,
    InvalidOutputError,
    PluralignError,
    UpstreamError,
)
from pluralign.generators import Generator
from pluralign.groups import GroupTarget
from pluralign.server.config import ServerConfig
from pluralign.server.queue import DecisionQueue, QueueFull
from pluralign.targets import AlignmentTarget
from pluralign.userstore import UserStore


@dataclass
class ServiceState:
    config: ServerConfig
    queue: DecisionQueue
    profile_queue: DecisionQueue
    users: UserStore
    chooser: Chooser | None = None
    generator: Generator | None = None
    method_config: dict[str, Any] = field(default_factory=dict)


def state(request: Request) -> ServiceState:
    return request.app.state.pluralign  # type: ignore[no-any-return]


def chooser(request: Request) -> Chooser:
    s = state(request)
    if s.chooser is None:
        raise HTTPException(503, "the method is still loading; retry in a moment")
    return s.chooser


def check_probe(config: ServerConfig, question: str, responses: list[str]) -> None:
    if len(responses) > config.limits.max_responses:
        raise HTTPException(422, f"{len(responses)} responses exceed the limit of {config.limits.max_responses}")
    longest = max([len(question), *map(len, responses)])
    if longest > config.limits.max_text_chars:
        raise HTTPException(422, f"a text of {longest} characters exceeds the limit of {config.limits.max_text_chars}")


def request_goal(config: ServerConfig, raw: Any, name: str = "target") -> AlignmentTarget | GroupTarget:
    """A request's target or group, within the service's --max-group-members."""
    from pluralign.groups import goal_from_data, group_members

    members = group_members(raw)
    if members is not None:
        if len(members) > config.limits.max_group_members:
            raise HTTPException(
                422, f"a group of {len(members)} profiles exceeds the limit of {config.limits.max_group_members}"
            )
        return goal_from_data(raw, "group", config.registry)
    return goal_from_data(raw, name, config.registry)


def status_for(exc: PluralignError) -> int:
    if isinstance(exc, QueueFull):
        return 503
    if isinstance(exc, (InputError, ContextLengthError)):
        return 422
    if isinstance(exc, DeadlineExceeded):
        return 504
    if isinstance(exc, (UpstreamError, InvalidOutputError)):
        return 502
    if isinstance(exc, BackendUnavailableError):
        return 503
    return 500
