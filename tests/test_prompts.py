"""The prompts: what the model is shown, and refusals of empty input."""
import pytest

from ftrag.data import load_documents, load_house_style
from ftrag.evaluate import cited_ids, format_ok, persona_ok
from ftrag.prompts import EXAMPLE_HITS, SYSTEM, closed_book_messages, rag_messages
from ftrag.retrieval import Hit

HITS = [Hit("returns-policy", 0, "Returns policy", "Unused gear can be returned within 45 days.", 0.8),
        Hit("shipping", 1, "Shipping", "Orders over $75 ship free.", 0.4)]


def test_rag_prompt_numbers_and_labels_each_block_in_rank_order():
    system, *example, user = rag_messages("How long do I have?", HITS)
    assert system == {"role": "system", "content": SYSTEM} and user["role"] == "user"
    text = user["content"]
    first, second = text.index("Document 1 [returns-policy]"), text.index("Document 2 [shipping]")
    assert first < text.index("within 45 days") < second < text.index("$75") < text.index("Question: How long")
    assert cited_ids(text) == ["returns-policy", "shipping"]  # only source ids appear in brackets


def test_rag_prompt_asks_for_context_only_and_for_a_refusal_when_it_lacks_the_answer():
    text = rag_messages("Q?", HITS)[-1]["content"].lower()
    assert "only the context" in text and "doesn't cover" in text


def test_worked_example_comes_first_in_the_house_format_and_can_be_left_out():
    with_example, without = rag_messages("Q?", HITS), rag_messages("Q?", HITS, example=False)
    assert [m["role"] for m in with_example] == ["system", "user", "assistant", "user"]
    assert [m["role"] for m in without] == ["system", "user"] and without[1] == with_example[3]
    answer = with_example[2]["content"]
    assert format_ok(answer) and persona_ok(answer, load_house_style()["signoff"]) and cited_ids(answer) == [EXAMPLE_HITS[0].doc_id]
    # the example is made up: no document of the knowledge base has its id
    assert EXAMPLE_HITS[0].doc_id not in {d["id"] for d in load_documents()}
    assert "Source:" in SYSTEM  # the system prompt asks for the citation line


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
