"""OpenAI's wire formats over the services' typed events: one module per API
(chat completions, legacy completions), shared shapes in ``shapes``."""
