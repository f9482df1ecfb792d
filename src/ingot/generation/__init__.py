"""Turning OpenAI-style requests into engine requests and engine outputs back into
OpenAI-style responses. Engine-independent; the HTTP routes stay thin."""
