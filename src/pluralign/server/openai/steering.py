"""Whom an OpenAI-compatible request steers to, and what the judge reads as its question.

The target is, in this order: the request's ``pluralign.target`` (a person's or a group's), its
``pluralign.profile`` (a saved profile of ``--profiles``), a ``model`` that names one
(``pluralign/NAME``: for chat UIs and frameworks that cannot send ``extra_body``), the profile
stored for its ``user`` (learned from feedback), and the service's ``--default-target``."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from fastapi import HTTPException

from pluralign.choice.target_data import profile_from_data
from pluralign.choice.targets import Target
from pluralign.prediction.judges.base import ChatMessage
from pluralign.prediction.methods.llm import LLMMethod
from pluralign.server.openai.protocol import Steering
from pluralign.server.state import ServiceState
from pluralign.support.errors import InputError

MODEL_PREFIX = "pluralign/"


async def saved_profile(s: ServiceState, ns: str, name: str, where: str) -> Target:
    """A saved profile (or group) the namespace sees, by its name."""
    return s.admission.target(await asyncio.to_thread(s.saved.read, ns, name, where), name)


async def steering_target(
    s: ServiceState,
    steering: Steering | None,
    model: str,
    user: str | None,
    ns: str,
    target_field: str = "pluralign.target",
) -> tuple[Target, int | None]:
    """The request's target, with the incarnation of the user whose stored profile it is (None
    otherwise), so nothing is kept for a user forgotten meanwhile."""
    if steering is not None and steering.target is not None:
        try:
            return s.admission.target(steering.target), None
        except InputError as exc:  # name the field, for OpenAI's param
            raise InputError(f"{target_field}: {exc}") from None
        except HTTPException as exc:
            raise HTTPException(exc.status_code, f"{target_field}: {exc.detail}") from None
    if steering is not None and steering.profile is not None:
        return await saved_profile(s, ns, steering.profile, target_field.replace("target", "profile")), None
    if model.startswith(MODEL_PREFIX) and model != MODEL_PREFIX.rstrip("/"):
        return await saved_profile(s, ns, model.removeprefix(MODEL_PREFIX), "model"), None
    if user is not None:
        stored = await asyncio.to_thread(s.users.profile, ns, user)
        if stored is not None:
            return profile_from_data(stored.profile["target_file"], "profile", s.config.registry), stored.incarnation
        if s.config.default_target is None:
            raise HTTPException(422, "user: no profile is stored for this user yet; send pluralign.target or feedback")
    if s.config.default_target is not None:
        return s.config.default_target, None
    wanted = "pluralign.target, pluralign.profile, model pluralign/NAME, or a user with a stored profile"
    raise HTTPException(422, f"pluralign: no target; send {wanted}")


def transcript(messages: Sequence[ChatMessage]) -> str:
    """What the judge reads as the question: the user's message, or the conversation so far."""
    turns = [m for m in messages if m.role != "system"]
    if len(turns) == 1:
        return turns[0].content
    return "\n\n".join(f"{m.role.capitalize()}: {m.content}" for m in turns)


def judging_overrides(s: ServiceState) -> dict[str, Any] | None:
    """How a chat's candidates and a rerank's documents are judged: the served method with
    ``--steer-passes``, ``--steer-reasoning`` and ``--steer-reasoning-chars`` (a person is
    waiting), where it has them."""
    method = s.chooser.method if s.chooser is not None else None
    if not isinstance(method, LLMMethod):
        return None
    limits = s.config.limits
    return method.quicker(limits.steer_passes or None, limits.steer_reasoning, limits.steer_reasoning_chars) or None
