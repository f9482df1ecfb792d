"""Query -> dense + BM25 search -> reciprocal-rank fusion -> optional rerank -> passages."""
