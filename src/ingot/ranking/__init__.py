"""Passage reranking: a ranker protocol, implementations, and the NIM/Cohere service."""
