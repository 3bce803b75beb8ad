"""pluralign: choose, among candidate responses, the one that fits a person's values."""

from pluralign.api import Chooser, ChooseResult, choose
from pluralign.attributes import BUILTIN_ATTRIBUTES, Attribute, AttributeRegistry
from pluralign.errors import PluralignError
from pluralign.probes import Probe
from pluralign.selection import Choice, Metric, select
from pluralign.targets import AlignmentTarget

__all__ = [
    "BUILTIN_ATTRIBUTES",
    "AlignmentTarget",
    "Attribute",
    "AttributeRegistry",
    "Choice",
    "ChooseResult",
    "Chooser",
    "Metric",
    "PluralignError",
    "Probe",
    "choose",
    "select",
]
__version__ = "0.2.0"
