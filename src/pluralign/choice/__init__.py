"""What a choice is: attributes, targets (one person or a group), probes, selection, and the
explanation of a choice. Knows nothing of LLMs; imports only :mod:`pluralign.support`."""
