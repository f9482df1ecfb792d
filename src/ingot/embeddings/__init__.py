"""Text embeddings: an encoder protocol, a dynamic batcher and the OpenAI/NIM service."""
