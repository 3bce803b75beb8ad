"""How responses get predicted attribute values: judges (one backend a file), prompts,
few-shot examples, methods, generators, embeddings and model weights."""
