"""The OpenAI-compatible face of the service, a module per endpoint as vLLM's
``entrypoints/openai`` has it: the typed protocol (:mod:`.protocol`), one error shape
(:mod:`.errors`), whom a request steers to (:mod:`.steering`), chat completions (:mod:`.chat`),
rerank (:mod:`.rerank`) and the model list (:mod:`.models`)."""
