"""Fusion: per stream, join vision and audio results in windows of media time."""
