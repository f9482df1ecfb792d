"""Vector stores behind one protocol: LanceDB (embedded default) and Milvus (Lite file or cluster)."""
