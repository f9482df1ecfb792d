"""The knowledge base: collections, durable ingestion jobs, documents (see docs/api.md)."""
