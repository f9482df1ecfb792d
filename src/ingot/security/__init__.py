"""Tenancy and input safety: API keys (``keys``), per-key quotas (``quotas``), per-key usage
(``usage``) and upload checks (``uploads``). Nothing here imports FastAPI except the upload
helper's error type, so the CLI can manage keys without loading the server."""
