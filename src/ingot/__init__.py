"""ingot: an open, self-hostable AI foundry (OpenAI-compatible serving + RAG)."""

__version__ = "0.1.0"
