"""Retrieval evaluation: BEIR datasets (:mod:`ingot.eval.beir`) and IR metrics
(:mod:`ingot.eval.metrics`), the library under ``ingot eval retrieval``."""
