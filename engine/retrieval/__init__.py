"""Retrieval for vector stores and the file_search tool: parse a file to text (parse.py),
split it into overlapping token windows (chunking.py) and rank the chunks lexically
(bm25.py), blended with embeddings from an OpenAI-compatible endpoint when one is
configured (embeddings.py). No web framework, no Redis: the index serialises to plain
dicts so its owner can keep it wherever it likes."""
