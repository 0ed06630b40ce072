"""tandemd: the service. Config, supervision, dispatch, workers, fusion, publishing, metrics."""
