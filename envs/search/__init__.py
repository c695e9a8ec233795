"""SearchJudge: a ReSeek-style search agent environment over a BM25-indexed corpus.

``env`` holds the environment, ``rewards`` its reward functions, ``data`` the data specs,
``world`` the fictional world generator, ``importers`` the HotpotQA and JSONL importers,
``corpus``/``bm25``/``retrievers`` the storage and retrieval layers.
"""
