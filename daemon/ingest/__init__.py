"""Ingest processes: one per stream, each running a `streams` source and sending its items."""
