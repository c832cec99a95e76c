def demo_hook(book, work):
    """Index the demo's chain and serve the catalog (see `codexfield.indexer.demo`)."""
    from codexfield.indexer.demo import demo_hook as _hook

    return _hook(book, work)
