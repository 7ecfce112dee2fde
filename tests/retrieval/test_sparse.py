"""The BM25 model both adapters share."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from sitechat.retrieval import sparse


def test_queries_match_across_case_inflection_and_accents() -> None:
    assert sparse.embed_query("Installing Widgets") == sparse.embed_query("install widget")
    assert sparse.embed_query("Café résumé") == sparse.embed_query("cafe resume")


def test_stopwords_and_symbols_give_an_empty_query() -> None:
    for text in ("", "the of and", "?!... --- ***", "   \n\t"):
        assert sparse.embed_query(text) == sparse.SparseEmbedding([], [])


def test_a_query_weighs_each_distinct_term_once() -> None:
    vector = sparse.embed_query("widget widget widgets install")
    assert len(vector.indices) == 2
    assert vector.values == [1.0, 1.0]


def test_documents_weigh_repeated_terms_higher_with_saturation() -> None:
    once = dict(zip(*sparse.embed_document("widget install"), strict=True))
    thrice = dict(zip(*sparse.embed_document("widget widget widget install"), strict=True))
    [widget] = sparse.embed_query("widget").indices
    assert thrice[widget] > once[widget]
    assert thrice[widget] < 3 * once[widget]
    assert max(thrice.values()) < 2.2  # BM25 term weight never exceeds k + 1


def test_embedding_from_many_threads_gives_the_same_vectors() -> None:
    texts = [f"passage {i} about widgets, billing and refunds number {i % 7}" for i in range(200)]
    serial = [sparse.embed_document(t) for t in texts]
    with ThreadPoolExecutor(max_workers=8) as pool:
        parallel = list(pool.map(sparse.embed_document, texts))
    assert parallel == serial


def test_bm25_text_puts_title_and_headings_before_the_text() -> None:
    text = sparse.bm25_text("Guide", ("Install", "Embedding the widget"), "Paste it.")
    assert text == "Guide\nInstall\nEmbedding the widget\nPaste it."


def test_term_coverage_is_the_share_of_query_terms_present() -> None:
    assert sparse.term_coverage("refund policy", "Our refund rules") == 0.5
    assert sparse.term_coverage("refunds", "A refund is paid.") == 1.0
    assert sparse.term_coverage("weather", "A refund is paid.") == 0.0
    assert sparse.term_coverage("the of", "anything") == 0.0
