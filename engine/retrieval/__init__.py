"""Retrieval for vector stores and the file_search tool: parse a file to text (parse.py),
split it into overlapping token windows (chunking.py) and rank the chunks lexically
(bm25.py). Pure library: no HTTP, no Redis; the index serialises to plain dicts so its
owner can keep it wherever it likes."""
