"""People: learning a person's target from their choices (profiles), and the store of the people
the service learns from feedback."""
