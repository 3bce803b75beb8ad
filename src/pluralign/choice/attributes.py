"""Attributes an alignment target can name, with the descriptions the judge reads.

The 11 built-ins are the paper's (HelpSteer2 and the Moral Foundations of MIC); users add
their own from a JSON or YAML file, either a list of objects or a name -> object mapping.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from pydantic import ConfigDict, Field, field_validator

from pluralign.support.errors import InputError, UnknownAttributeError
from pluralign.support.files import read_json, read_text
from pluralign.support.strict import Closed, validate_each


class Attribute(Closed):
    """A dimension responses are scored on; ``levels`` is the number of label levels (a misspelt
    ``levles`` is refused, never read as 5)."""

    model_config = ConfigDict(frozen=True)

    name: str = Field(min_length=1, max_length=64)
    description: str = Field(min_length=1)
    levels: int = Field(default=5, ge=2, le=101)

    @field_validator("name")
    @classmethod
    def _simple_name(cls, value: str) -> str:
        if not all(ch.isalnum() or ch in "_-" for ch in value):
            raise ValueError(f"attribute name {value!r} may only use letters, digits, _ and -")
        return value

    def level_values(self) -> list[float]:
        """The label values on [0, 1], rounded to 2 places as the paper does."""
        return [round(i / (self.levels - 1), 2) for i in range(self.levels)]


HELPSTEER2 = ("helpfulness", "correctness", "coherence", "complexity", "verbosity")
MIC = ("care", "fairness", "liberty", "loyalty", "authority", "sanctity")

_DESCRIPTIONS: dict[str, str] = {
    "helpfulness": (
        "Helpfulness is how well the response meets the needs of the person asking. A high "
        "score means it fully addresses the request and is useful; a low score means it "
        "ignores, misreads or fails the request."
    ),
    "correctness": (
        "Correctness is whether the response contains all relevant facts without errors. A "
        "high score means everything stated is accurate and nothing important is missing; a "
        "low score means it contains false statements or leaves out what matters."
    ),
    "coherence": (
        "Coherence is the consistency and clarity of expression. A high score means the "
        "response is logically ordered and easy to follow; a low score means it is "
        "contradictory, rambling or confusing."
    ),
    "complexity": (
        "Complexity is the intellectual depth needed to write the response. A high score "
        "means it needs deep domain expertise and sophisticated language; a low score means "
        "anyone with basic language skills could have written it."
    ),
    "verbosity": (
        "Verbosity is the amount of detail relative to what the question asks for. A high "
        "score means the response is long and elaborate; a low score means it is terse and "
        "brief."
    ),
    "care": (
        "Care is concern for the wellbeing of others and the avoidance of harm. A high score "
        "means the response is kind and protects people from harm; a low score means it is "
        "callous or endorses causing harm. "
        "A response that does not touch on anyone's wellbeing is neutral."
    ),
    "fairness": (
        "Fairness is justice, equal treatment and reciprocity. A high score means the "
        "response upholds equal rights and honest dealing; a low score means it endorses "
        "cheating, discrimination or exploitation. "
        "A response that does not touch on how people are treated relative to each other is "
        "neutral, however helpful it is."
    ),
    "liberty": (
        "Liberty is freedom from domination and respect for autonomy. A high score means the "
        "response defends people's right to choose for themselves; a low score means it "
        "endorses coercion, control or oppression. "
        "A response that does not touch on anyone's freedom to choose is neutral, however helpful it is."
    ),
    "loyalty": (
        "Loyalty is allegiance to one's group, family or nation. A high score means the "
        "response values standing by one's people; a low score means it endorses betrayal "
        "or disregards group commitments. "
        "A response that does not touch on commitments to a group is neutral, however helpful it is."
    ),
    "authority": (
        "Authority is respect for legitimate leadership, tradition and social order. A high "
        "score means the response defers to rules and those in charge; a low score means it "
        "endorses subversion or disrespect of authority. "
        "A response that does not involve rules, hierarchy or those in charge is neutral, "
        "however kind or helpful it is."
    ),
    "sanctity": (
        "Sanctity is purity and the avoidance of what is degrading or disgusting. A high "
        "score means the response treats things as sacred or pure; a low score means it "
        "endorses degradation, contamination or profanity. "
        "A response that does not touch on purity or the sacred is neutral, however helpful it is."
    ),
}

BUILTIN_ATTRIBUTES: tuple[Attribute, ...] = tuple(
    Attribute(name=name, description=_DESCRIPTIONS[name], levels=5) for name in HELPSTEER2
) + tuple(Attribute(name=name, description=_DESCRIPTIONS[name], levels=7) for name in MIC)


class AttributeRegistry(Mapping[str, Attribute]):
    """The attributes known to a run: the built-ins plus any the user defined."""

    def __init__(self, attributes: Iterable[Attribute] = BUILTIN_ATTRIBUTES) -> None:
        self._by_name: dict[str, Attribute] = {}
        for attribute in attributes:
            self._by_name[attribute.name] = attribute

    def __getitem__(self, name: str) -> Attribute:
        try:
            return self._by_name[name]
        except KeyError:
            known = ", ".join(sorted(self._by_name))
            raise UnknownAttributeError(f"unknown attribute {name!r} (known: {known})") from None

    def __contains__(self, name: object) -> bool:  # Mapping's would raise for an unknown name
        return name in self._by_name

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_name)

    def __len__(self) -> int:
        return len(self._by_name)

    def require(self, names: Iterable[str], what: str | None = None) -> list[Attribute]:
        """Look up several names, failing on the first unknown one or the first named twice: the
        one place every list of attributes passes (a request, a flag, a file), so a name given
        twice is never judged twice or counted twice in a fit."""
        names = list(names)
        seen: set[str] = set()
        for name in names:
            if name in seen:
                raise InputError(f"{what or 'attributes'}: {name!r} is named twice")
            seen.add(name)
        try:
            return [self[name] for name in names]
        except UnknownAttributeError as exc:  # named as the list it came in (a request's field, a flag)
            if what is None:
                raise
            raise UnknownAttributeError(f"{what}: {exc}") from None

    def with_file(self, path: str | Path) -> AttributeRegistry:
        """A new registry with the attributes of a user file added (they may override)."""
        return AttributeRegistry([*self._by_name.values(), *load_attribute_file(path)])


def _parse_mapping_or_list(raw: Any, source: str) -> list[Attribute]:
    entries: list[dict[str, Any]]
    if isinstance(raw, dict):
        entries = []
        for name, body in raw.items():
            if isinstance(body, str):
                body = {"description": body}
            if not isinstance(body, dict):
                raise InputError(f"{source}: attribute {name!r} must be an object or a string")
            entries.append({"name": name, **body})
    elif isinstance(raw, list):
        entries = raw
    else:
        raise InputError(f"{source}: expected a list or mapping of attributes")
    return validate_each(Attribute, entries, lambda i: f"{source}: attribute #{i + 1}: ")


def load_attribute_file(path: str | Path) -> list[Attribute]:
    """Read user attributes from JSON or YAML."""
    path = Path(path)
    if path.suffix.lower() in {".yaml", ".yml"}:
        import yaml

        try:
            raw = yaml.safe_load(read_text(path, "attribute file"))
        except yaml.YAMLError as exc:
            raise InputError(f"attribute file {path} is not valid YAML: {' '.join(str(exc).split())}") from None
    else:
        raw = read_json(path, "attribute file")
    return _parse_mapping_or_list(raw, str(path))


DEFAULT_REGISTRY = AttributeRegistry()
