"""Embeddings from an OpenAI-compatible `POST {base_url}/embeddings` endpoint (OpenAI,
vLLM, Ollama, ...), for hybrid ranking when one is configured.

Texts go in batches so a large file is not one huge request, and the vectors come back
in the order of the texts whatever order the endpoint lists them in. Errors never carry
the API key: only the endpoint's URL, status and the start of its answer.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field

import httpx

BATCH_SIZE = 64


@dataclass(frozen=True)
class EmbeddingsEndpoint:
    base_url: str
    model: str
    api_key: str | None = field(default=None, repr=False)


class EmbeddingsError(Exception):
    """The endpoint could not be reached or gave no usable embeddings."""


async def embed(
    client: httpx.AsyncClient,
    endpoint: EmbeddingsEndpoint,
    texts: Sequence[str],
    batch_size: int = BATCH_SIZE,
) -> list[list[float]]:
    """One vector per text, in order."""
    vectors: list[list[float]] = []
    for first in range(0, len(texts), batch_size):
        vectors += await _embed_batch(client, endpoint, list(texts[first : first + batch_size]))
    return vectors


async def _embed_batch(
    client: httpx.AsyncClient, endpoint: EmbeddingsEndpoint, texts: list[str]
) -> list[list[float]]:
    url = endpoint.base_url.rstrip("/") + "/embeddings"
    headers = {"Authorization": f"Bearer {endpoint.api_key}"} if endpoint.api_key else {}
    try:
        response = await client.post(
            url, json={"model": endpoint.model, "input": texts}, headers=headers
        )
    except httpx.HTTPError as error:
        raise EmbeddingsError(
            f"Embeddings endpoint {url} unreachable: {type(error).__name__}."
        ) from error
    if response.status_code != 200:
        raise EmbeddingsError(
            f"Embeddings endpoint {url} answered {response.status_code}: {response.text[:200]}"
        )
    try:
        items = response.json()["data"]
        by_index = {item["index"]: item["embedding"] for item in items}
        vectors = [by_index[position] for position in range(len(texts))]
    except (ValueError, KeyError, TypeError) as error:
        raise EmbeddingsError(
            f"Embeddings endpoint {url} gave an unexpected answer: {response.text[:200]}"
        ) from error
    if not all(
        isinstance(vector, list) and vector and all(isinstance(x, int | float) for x in vector)
        for vector in vectors
    ):
        raise EmbeddingsError(f"Embeddings endpoint {url} gave vectors that are not numbers.")
    return [[float(x) for x in vector] for vector in vectors]
