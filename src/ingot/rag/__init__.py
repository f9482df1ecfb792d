"""Retrieval-augmented chat: retrieve, fit passages into the prompt, answer with citations."""
