"""tandemd itself: service loop, start-up, per-stream state, pipeline, reload, ops."""
