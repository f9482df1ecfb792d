"""Anthropic's Messages API (``POST /v1/messages``, ``/v1/messages/count_tokens``) as a wire
adapter over the generation service: ``protocol`` converts the request to the internal chat
request, ``messages`` turns the service's events into Anthropic's message or its named SSE
events, ``errors`` renders Anthropic's error body (``server/errors.py`` picks it for these
paths). Kept import-free so ``server/errors.py`` can use ``errors`` without a cycle."""
