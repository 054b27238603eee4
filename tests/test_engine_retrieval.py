"""Retrieval for vector stores: files parse to their text, chunk by the spec's static
strategy, and rank lexically with BM25 so that a question finds the chunk answering it."""

import asyncio
import itertools
import json
import socket
from collections.abc import Iterator, Sequence

import httpx
import pytest

from engine.retrieval.bm25 import Index
from engine.retrieval.chunking import (
    Chunk,
    ChunkingStrategy,
    chunk,
    chunking_strategy,
    count_tokens,
    token_spans,
)
from engine.retrieval.embeddings import EmbeddingsEndpoint, EmbeddingsError, embed
from engine.retrieval.errors import FileError, InvalidFile, ParamError, UnsupportedFile
from engine.retrieval.parse import parse
from tests.fake_embeddings import FakeEmbeddings


def make_pdf(pages: list[str]) -> bytes:
    """A minimal valid PDF whose pages show `pages` in Helvetica, with a correct xref."""
    page_ids = [4 + 2 * i for i in range(len(pages))]
    objects = {
        1: b"<< /Type /Catalog /Pages 2 0 R >>",
        2: b"<< /Type /Pages /Kids ["
        + b" ".join(b"%d 0 R" % page_id for page_id in page_ids)
        + b"] /Count %d >>" % len(pages),
        3: b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    }
    for page_id, text in zip(page_ids, pages, strict=True):
        stream = b"BT /F1 12 Tf 72 720 Td (" + text.encode("latin-1") + b") Tj ET"
        objects[page_id] = (
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
            b"/Resources << /Font << /F1 3 0 R >> >> /Contents %d 0 R >>" % (page_id + 1)
        )
        objects[page_id + 1] = b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream)
    out = bytearray(b"%PDF-1.4\n")
    offsets = {}
    for number in sorted(objects):
        offsets[number] = len(out)
        out += b"%d 0 obj\n%s\nendobj\n" % (number, objects[number])
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for number in sorted(objects):
        out += b"%010d 00000 n \n" % offsets[number]
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


# Parsing


def test_plain_text_and_markdown_keep_their_text() -> None:
    assert parse("Grüße aus Köln\n".encode(), "notes.txt") == "Grüße aus Köln\n"
    markdown = "# Refunds\n\n- within **30 days**\n- with a receipt\n"
    assert parse(markdown.encode(), "POLICY.MD") == markdown
    # A byte-order mark is not text.
    assert parse(b"\xef\xbb\xbfhello", "a.txt") == "hello"
    assert parse("hi there".encode("utf-16"), "a.txt") == "hi there"


def test_json_becomes_its_pretty_printed_document() -> None:
    text = parse(b'{"plan":{"name":"Pro","seats":[1,2]},"note":"caf\\u00e9"}', "plan.json")
    assert json.loads(text) == {"plan": {"name": "Pro", "seats": [1, 2]}, "note": "café"}
    assert '"name": "Pro"' in text
    assert "café" in text
    assert text.count("\n") > 3


def test_html_gives_visible_text_without_scripts_or_styles() -> None:
    html = b"""<!doctype html><html><head><title>Opening hours</title>
    <style>body { color: red }</style><script>var secret = "tracking";</script></head>
    <body><h1>Hours</h1><p>Open <b>Monday</b>&nbsp;to Friday &amp; weekends.</p>
    <script type="module">alert("x")</script><ul><li>9am</li><li>5pm</li></ul>
    <br/>Closed on holidays</body></html>"""
    text = parse(html, "hours.html")
    assert text.splitlines() == [
        "Opening hours",
        "Hours",
        "Open Monday to Friday & weekends.",
        "9am",
        "5pm",
        "Closed on holidays",
    ]
    assert "secret" not in text and "color" not in text and "alert" not in text


def test_pdf_parses_to_the_text_of_its_pages() -> None:
    pdf = make_pdf(["The warranty lasts two years.", "Batteries are covered for one year."])
    text = parse(pdf, "warranty.pdf")
    assert "The warranty lasts two years." in text
    assert "Batteries are covered for one year." in text
    assert text.index("warranty") < text.index("Batteries")


def test_content_type_decides_when_the_name_has_no_known_extension() -> None:
    assert parse(b"<p>Hello <script>x()</script>world</p>", "upload", "text/html") == (
        "Hello world"
    )
    assert "Alpha" in parse(make_pdf(["Alpha"]), "blob", "application/pdf; charset=binary")
    assert parse(b"plain", "README", "text/plain") == "plain"


@pytest.mark.parametrize(
    ("data", "filename", "content_type"),
    [
        (b"\x89PNG\r\n\x1a\n....", "photo.png", "image/png"),
        (b"MZ\x90\x00", "setup.exe", None),
        (b"hello", "archive", "application/octet-stream"),
        (b"hello", "no-type", None),
    ],
)
def test_unsupported_types_fail_with_unsupported_file(
    data: bytes, filename: str, content_type: str | None
) -> None:
    with pytest.raises(UnsupportedFile) as raised:
        parse(data, filename, content_type)
    assert raised.value.last_error()["code"] == "unsupported_file"
    assert filename in raised.value.last_error()["message"]


@pytest.mark.parametrize(
    ("data", "filename", "message"),
    [
        (b"%PDF-1.4\n1 0 obj garbage", "broken.pdf", "PDF could not be read"),
        (b"not a pdf at all", "fake.pdf", "PDF could not be read"),
        (b"\xff\xfe\x00", "latin.txt", "not valid utf-16"),
        (b"caf\xe9 au lait", "latin.md", "not valid utf-8"),
        (b"text\x00with nul", "binary.txt", "binary data"),
        (b'{"open": ', "cut.json", "not valid JSON"),
        (b"  \n\t ", "blank.txt", "no text"),
        (b"<script>only()</script>", "script.html", "no text"),
        (make_pdf([""]), "empty.pdf", "no text"),
    ],
)
def test_corrupt_or_empty_files_fail_with_invalid_file(
    data: bytes, filename: str, message: str
) -> None:
    with pytest.raises(InvalidFile) as raised:
        parse(data, filename)
    error = raised.value
    assert isinstance(error, FileError)
    assert error.last_error() == {"code": "invalid_file", "message": error.message}
    assert message in error.message


# Tokens and chunking


def words(count: int) -> str:
    return " ".join(f"word{i % 97}." for i in range(count))


def test_tokens_are_deterministic_word_pieces() -> None:
    assert count_tokens("The cat sat.") == 4
    # Long words and long numbers take several tokens; whitespace takes none.
    assert count_tokens("internationalization") == 3
    assert count_tokens("1234567") == 3
    assert count_tokens("   \n") == 0
    assert count_tokens("東京タワー") == 5


def test_chunks_respect_size_and_overlap() -> None:
    text = words(1000)  # 3 tokens a word: "word", the digits, "."
    strategy = chunking_strategy(
        {"type": "static", "static": {"max_chunk_size_tokens": 300, "chunk_overlap_tokens": 100}}
    )
    chunks = chunk(text, strategy)
    total = count_tokens(text)
    assert total == 3000
    # Windows start every 200 tokens until one reaches the end.
    assert len(chunks) == 15
    for item in chunks:
        assert item.text == text[item.start : item.end]
        assert count_tokens(item.text) == item.tokens <= 300
    assert [item.tokens for item in chunks] == [300] * 14 + [200]
    for previous, following in itertools.pairwise(chunks):
        assert count_tokens(text[following.start : previous.end]) == 100
    assert chunks[0].start == 0 and chunks[-1].end == len(text)
    assert [item.index for item in chunks] == list(range(15))


def test_default_strategy_is_800_tokens_with_400_overlap() -> None:
    text = words(1000)
    chunks = chunk(text)
    assert [item.tokens for item in chunks] == [800] * 6 + [600]
    assert count_tokens(text[chunks[1].start : chunks[0].end]) == 400
    assert chunking_strategy(None) == chunking_strategy({"type": "auto"}) == ChunkingStrategy()
    assert ChunkingStrategy().to_response() == {
        "type": "static",
        "static": {"max_chunk_size_tokens": 800, "chunk_overlap_tokens": 400},
    }


def test_short_and_empty_texts() -> None:
    assert chunk("  Just a line.  ") == [Chunk(0, "Just a line.", 2, 14, 4)]
    assert chunk("") == []
    # Zero overlap tiles the text.
    strategy = ChunkingStrategy(100, 0)
    chunks = chunk(words(100), strategy)
    assert [item.tokens for item in chunks] == [100, 100, 100]
    assert sum(count_tokens(item.text) for item in chunks) == len(token_spans(words(100)))


@pytest.mark.parametrize(
    ("param", "name", "message"),
    [
        ("static", "chunking_strategy", "expected an object"),
        ({"type": "dynamic"}, "chunking_strategy.type", "'auto' or 'static'"),
        ({"type": "auto", "size": 1}, "chunking_strategy.size", "Unrecognized"),
        ({"type": "static"}, "chunking_strategy.static", "expected an object"),
        (
            {"type": "static", "static": {"max_chunk_size_tokens": 99, "chunk_overlap_tokens": 0}},
            "chunking_strategy.static.max_chunk_size_tokens",
            "between 100 and 4096",
        ),
        (
            {
                "type": "static",
                "static": {"max_chunk_size_tokens": 4097, "chunk_overlap_tokens": 0},
            },
            "chunking_strategy.static.max_chunk_size_tokens",
            "between 100 and 4096",
        ),
        (
            {
                "type": "static",
                "static": {"max_chunk_size_tokens": 800, "chunk_overlap_tokens": 401},
            },
            "chunking_strategy.static.chunk_overlap_tokens",
            "must not exceed half",
        ),
        (
            {
                "type": "static",
                "static": {"max_chunk_size_tokens": 800, "chunk_overlap_tokens": -1},
            },
            "chunking_strategy.static.chunk_overlap_tokens",
            "at least 0",
        ),
        (
            {"type": "static", "static": {"max_chunk_size_tokens": 800}},
            "chunking_strategy.static.chunk_overlap_tokens",
            "expected an integer",
        ),
        (
            {
                "type": "static",
                "static": {"max_chunk_size_tokens": True, "chunk_overlap_tokens": 0},
            },
            "chunking_strategy.static.max_chunk_size_tokens",
            "expected an integer",
        ),
        (
            {
                "type": "static",
                "static": {"max_chunk_size_tokens": 800.0, "chunk_overlap_tokens": 0},
            },
            "chunking_strategy.static.max_chunk_size_tokens",
            "expected an integer",
        ),
    ],
)
def test_invalid_chunking_strategies_name_the_param(param: object, name: str, message: str) -> None:
    with pytest.raises(ParamError) as raised:
        chunking_strategy(param)  # type: ignore[arg-type]
    assert raised.value.param == name
    assert message in raised.value.message


def test_largest_valid_static_strategy() -> None:
    strategy = chunking_strategy(
        {"type": "static", "static": {"max_chunk_size_tokens": 4096, "chunk_overlap_tokens": 2048}}
    )
    assert strategy == ChunkingStrategy(4096, 2048)


# BM25


HANDBOOK = {
    "file-refunds": (
        "Refunds are issued within 30 days of purchase when the customer shows a receipt. "
        "Gift cards cannot be refunded."
    ),
    "file-shipping": (
        "Orders ship from our warehouse in Rotterdam. Standard shipping takes five business "
        "days; express shipping arrives the next day."
    ),
    "file-security": (
        "Employees must lock their screens when away. Passwords rotate every 90 days and "
        "must never be shared with customers."
    ),
    "file-office": (
        "The office opens at 8am. The kitchen is cleaned on Fridays. Parking permits are "
        "requested from the front desk."
    ),
}


def handbook_index() -> Index:
    index = Index()
    for file_id, text in HANDBOOK.items():
        index.add_file(file_id, chunk(text))
    return index


@pytest.mark.parametrize(
    ("question", "file_id"),
    [
        ("How many days do I have to get a refund?", "file-refunds"),
        ("How long does express shipping take?", "file-shipping"),
        ("How often do passwords rotate?", "file-security"),
        ("Where do I get a parking permit?", "file-office"),
    ],
)
def test_the_answering_chunk_ranks_first(question: str, file_id: str) -> None:
    results = handbook_index().search(question)
    assert results[0].file_id == file_id
    assert all(0 < result.score <= 1 for result in results)
    assert [result.score for result in results] == sorted(
        (result.score for result in results), reverse=True
    )


def test_the_answering_chunk_of_a_long_document_ranks_first_with_its_offsets() -> None:
    filler = [
        f"Section {i}. The committee reviewed agenda item {i} and adjourned." for i in range(300)
    ]
    filler[170] = "Section 170. The boiler in building C is serviced every March by Heatwave Ltd."
    text = "\n".join(filler)
    chunks = chunk(text, ChunkingStrategy(200, 50))
    index = Index()
    index.add_file("file-minutes", chunks)
    index.add_file("file-other", chunk("Our boiler is new. Call facilities about heating."))
    best = index.search("When is the boiler serviced?", max_num_results=3)[0]
    assert best.file_id == "file-minutes"
    assert "Heatwave" in best.chunk.text
    # The offsets locate the citation in the parsed text.
    assert text[best.chunk.start : best.chunk.end] == best.chunk.text


def test_scores_compare_to_the_ideal_match_and_threshold_filters() -> None:
    index = handbook_index()
    everything = index.search("refund receipt shipping days")
    assert {result.file_id for result in everything} == {
        "file-refunds",
        "file-shipping",
        "file-security",
    }
    top = everything[0].score
    assert top < 1
    kept = index.search("refund receipt shipping days", score_threshold=top)
    assert [result.file_id for result in kept] == [everything[0].file_id]
    assert index.search("refund receipt shipping days", score_threshold=1) == []
    # A query sharing no term with any chunk finds nothing, stop words alone neither.
    assert index.search("quantum chromodynamics") == []
    assert index.search("what is the") == []


def test_max_num_results_and_file_filter() -> None:
    index = handbook_index()
    assert len(index.search("days customers")) == 3
    assert len(index.search("days customers", max_num_results=1)) == 1
    filtered = index.search("days customers", file_ids=["file-shipping", "file-office"])
    assert [result.file_id for result in filtered] == ["file-shipping"]
    assert index.search("days", file_ids=[]) == []


def test_several_queries_pool_their_terms() -> None:
    results = handbook_index().search(["refund", "parking permit"])
    assert {result.file_id for result in results} == {"file-refunds", "file-office"}


def test_ties_are_ordered_by_file_then_position() -> None:
    index = Index()
    for file_id in ["file-b", "file-c", "file-a"]:
        index.add_file(file_id, chunk("the same text about llamas"))
    index.add_file(
        "file-0",
        [
            Chunk(0, "other text about llamas", 0, 23, 4),
            Chunk(1, "other text about llamas", 24, 47, 4),
        ],
    )
    results = index.search("llamas")
    assert [(result.file_id, result.chunk.index) for result in results] == [
        ("file-0", 0),
        ("file-0", 1),
        ("file-a", 0),
        ("file-b", 0),
        ("file-c", 0),
    ]
    assert len({result.score for result in results}) == 1


def test_removing_a_file_removes_its_chunks() -> None:
    index = handbook_index()
    assert index.chunk_count() == 4
    assert index.remove_file("file-refunds") is True
    assert index.remove_file("file-refunds") is False
    assert index.chunk_count() == 3
    assert index.file_ids() == ["file-office", "file-security", "file-shipping"]
    assert all(result.file_id != "file-refunds" for result in index.search("refund receipt days"))
    assert index.search("refund receipt gift cards") == []
    # Re-adding a file replaces its chunks rather than duplicating them.
    index.add_file("file-office", chunk("Refunds for parking are handled by the front desk."))
    index.add_file("file-office", chunk("Refunds for parking are handled by the front desk."))
    assert index.chunk_count() == 3
    assert [result.file_id for result in index.search("refund")] == ["file-office"]
    # Removing every file leaves an empty index, not a broken one.
    for file_id in index.file_ids():
        index.remove_file(file_id)
    assert index.search("refund") == []
    assert index.to_dict() == Index().to_dict()


def test_serialized_state_round_trips_to_identical_results() -> None:
    index = handbook_index()
    index.add_file("file-long", chunk(words(2000), ChunkingStrategy(100, 20)))
    index.remove_file("file-office")
    state = json.loads(json.dumps(index.to_dict()))
    restored = Index.from_dict(state)
    for query in ["refund days", "word12 word40", "shipping customers passwords", "parking"]:
        assert restored.search(query, max_num_results=50) == index.search(query, max_num_results=50)
    assert restored.to_dict() == index.to_dict()
    with pytest.raises(ValueError, match="version"):
        Index.from_dict({"version": 99, "files": {}})


@pytest.mark.parametrize(
    ("options", "param"),
    [
        ({"max_num_results": 0}, "max_num_results"),
        ({"max_num_results": 51}, "max_num_results"),
        ({"max_num_results": True}, "max_num_results"),
        ({"ranker": "fastest"}, "ranking_options.ranker"),
        ({"score_threshold": 1.5}, "ranking_options.score_threshold"),
        ({"score_threshold": -0.1}, "ranking_options.score_threshold"),
        ({"score_threshold": float("nan")}, "ranking_options.score_threshold"),
    ],
)
def test_invalid_search_options_name_the_param(options: dict, param: str) -> None:
    with pytest.raises(ParamError) as raised:
        handbook_index().search("refund", **options)
    assert raised.value.param == param


@pytest.mark.parametrize("query", ["", "   ", [], ["refund", ""], 42])
def test_invalid_queries_are_rejected(query: object) -> None:
    with pytest.raises(ParamError) as raised:
        handbook_index().search(query)  # type: ignore[arg-type]
    assert raised.value.param == "query"


def test_every_ranker_of_the_spec_is_accepted() -> None:
    index = handbook_index()
    for ranker in ["auto", "default_2024_08_21", "default-2024-11-15", "none"]:
        assert index.search("refund", ranker=ranker, max_num_results=50)[0].file_id == (
            "file-refunds"
        )


# Embeddings and hybrid ranking


@pytest.fixture
def embeddings() -> Iterator[FakeEmbeddings]:
    with FakeEmbeddings() as server:
        yield server


def run_embed(
    endpoint: EmbeddingsEndpoint, texts: Sequence[str], batch_size: int = 64
) -> list[list[float]]:
    async def call() -> list[list[float]]:
        async with httpx.AsyncClient(timeout=10) as client:
            return await embed(client, endpoint, texts, batch_size)

    return asyncio.run(call())


def endpoint_of(server: FakeEmbeddings) -> EmbeddingsEndpoint:
    return EmbeddingsEndpoint(server.url, "fake-embed-1", server.api_key)


def test_embeddings_come_back_in_order_in_batches(embeddings: FakeEmbeddings) -> None:
    texts = ["my car", "a refund", "the dog", "rain", "car and dog"]
    vectors = run_embed(endpoint_of(embeddings), texts, batch_size=2)
    assert vectors == [
        [1, 0, 0, 0, 0.1],
        [0, 1, 0, 0, 0.1],
        [0, 0, 1, 0, 0.1],
        [0, 0, 0, 1, 0.1],
        [1, 0, 1, 0, 0.1],
    ]
    assert [len(request["body"]["input"]) for request in embeddings.requests] == [2, 2, 1]
    assert {request["body"]["model"] for request in embeddings.requests} == {"fake-embed-1"}
    assert run_embed(endpoint_of(embeddings), []) == []


def test_embeddings_errors_are_clear_and_keep_the_key_secret(
    embeddings: FakeEmbeddings,
) -> None:
    wrong_key = EmbeddingsEndpoint(embeddings.url, "fake-embed-1", "sk-wrong-secret")
    with pytest.raises(EmbeddingsError) as raised:
        run_embed(wrong_key, ["car"])
    assert "answered 401" in str(raised.value)
    assert "sk-wrong-secret" not in str(raised.value)
    assert "sk-wrong-secret" not in repr(wrong_key)

    embeddings.fail_status = 503
    with pytest.raises(EmbeddingsError, match="answered 503"):
        run_embed(endpoint_of(embeddings), ["car"])

    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    nowhere = EmbeddingsEndpoint(f"http://127.0.0.1:{port}/v1", "fake-embed-1")
    with pytest.raises(EmbeddingsError, match="unreachable"):
        run_embed(nowhere, ["car"])


GARAGE = {
    "file-garage": "Bring the sedan in for new tyres every autumn.",
    "file-pets": "A puppy needs walks twice a day.",
    "file-money": "Refunds are paid back within five days.",
}


def hybrid_index(server: FakeEmbeddings) -> Index:
    index = Index()
    for file_id, text in GARAGE.items():
        chunks = chunk(text)
        index.add_file(file_id, chunks, run_embed(endpoint_of(server), [c.text for c in chunks]))
    return index


def test_hybrid_search_finds_a_chunk_saying_it_in_other_words(
    embeddings: FakeEmbeddings,
) -> None:
    index = hybrid_index(embeddings)
    question = "How do I maintain my automobile?"
    assert index.search(question) == []
    [query_vector] = run_embed(endpoint_of(embeddings), [question])
    results = index.search(question, query_vector=query_vector)
    assert results[0].file_id == "file-garage"
    assert all(0 <= result.score <= 1 for result in results)
    # Semantic similarity alone is at most half the score; sharing words adds the rest.
    assert results[0].score <= 0.5
    [days_vector] = run_embed(endpoint_of(embeddings), ["refund days"])
    both = index.search("refund days", query_vector=days_vector)
    assert both[0].file_id == "file-money" and both[0].score > 0.5
    assert index.search(question, query_vector=query_vector, score_threshold=0.4) == results[:1]


def test_hybrid_state_round_trips_to_identical_results(embeddings: FakeEmbeddings) -> None:
    index = hybrid_index(embeddings)
    index.add_file("file-plain", chunk("Dogs and cars, without embeddings."))
    restored = Index.from_dict(json.loads(json.dumps(index.to_dict())))
    for question in ["walk the dog", "car tyres", "money back"]:
        [vector] = run_embed(endpoint_of(embeddings), [question])
        assert restored.search(question, query_vector=vector) == index.search(
            question, query_vector=vector
        )


def test_mismatched_embeddings_are_refused() -> None:
    index = Index()
    with pytest.raises(ValueError, match="2 embeddings given for 1 chunks"):
        index.add_file("file-a", chunk("car"), [[1.0, 0.0], [0.0, 1.0]])
    with pytest.raises(ValueError, match="non-zero"):
        index.add_file("file-a", chunk("car"), [[0.0, 0.0]])
    index.add_file("file-a", chunk("car"), [[1.0, 0.0]])
    with pytest.raises(ValueError, match="3 dimensions, file file-a's embeddings have 2"):
        index.search("car", query_vector=[1.0, 0.0, 0.0])
