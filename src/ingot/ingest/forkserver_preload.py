"""Imported by the extraction forkserver alone (``runner._PRELOAD``), before it forks any
worker: the forkserver dies with the process that started it (``lifeline``), and its
workers, which arrange the same for themselves, then die with it."""

from __future__ import annotations

from ingot.ingest.lifeline import die_with_parent

die_with_parent()
