"""OpenAI-compatible HTTP: the `lowres-mt serve` server and the client behind `openai:<name>` systems."""
