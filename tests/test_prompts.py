"""The prompts: what the model is shown, and refusals of empty input."""
import pytest

from ftrag.evaluate import cited_ids
from ftrag.prompts import SYSTEM, closed_book_messages, rag_messages
from ftrag.retrieval import Hit

HITS = [Hit("returns-policy", 0, "Returns policy", "Unused gear can be returned within 45 days.", 0.8),
        Hit("shipping", 1, "Shipping", "Orders over $75 ship free.", 0.4)]


def test_rag_prompt_numbers_and_labels_each_block_in_rank_order():
    system, user = rag_messages("How long do I have?", HITS)
    assert system == {"role": "system", "content": SYSTEM} and user["role"] == "user"
    text = user["content"]
    first, second = text.index("Document 1 [returns-policy]"), text.index("Document 2 [shipping]")
    assert first < text.index("within 45 days") < second < text.index("$75") < text.index("Question: How long")
    assert cited_ids(text) == ["returns-policy", "shipping"]  # only source ids appear in brackets


def test_rag_prompt_asks_for_context_only_abstention_and_a_citation():
    text = rag_messages("Q?", HITS)[1]["content"].lower()
    assert "only the context" in text and "doesn't cover" in text and "source: none" in text and "cite" in text


def test_rag_prompt_takes_another_system_prompt():
    assert rag_messages("Q?", HITS, system="Be brief.")[0]["content"] == "Be brief."


@pytest.mark.parametrize("question", ["", "   ", None])
def test_empty_question_is_refused(question):
    with pytest.raises(ValueError, match="Empty question"):
        rag_messages(question, HITS)
    with pytest.raises(ValueError, match="Empty question"):
        closed_book_messages(question)


def test_rag_prompt_needs_context():
    with pytest.raises(ValueError, match="No retrieved context"):
        rag_messages("Q?", [])


def test_closed_book_prompt_has_no_context():
    msgs = closed_book_messages("  Do you sell stoves? ")
    assert [m["role"] for m in msgs] == ["system", "user"] and msgs[1]["content"] == "Do you sell stoves?"
