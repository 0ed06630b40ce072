"""Worker processes: receive items from tandemd, run analyzers, send results back.

Workers never import fusion: they answer items and know nothing of windows or events.
"""
