"""Helpers the tests share: media generators, peers, tiny models."""
