"""The systems the book compares, as functions from questions to answers (labs/04_hybrid.ipynb).

- base:   the unchanged generator, closed-book (labs/01_baseline.ipynb)
- RAG:    the unchanged generator reading retrieved chunks (labs/02_rag.ipynb), in the prompt variant
          lab 2 chose on the development split (`rag_variant`)
- RAG + template: RAG's answer with the house sign-off and the Source line added by code
          (`templated`), the baseline any fine-tuned behaviour has to beat
- LoRA:   a fine-tuned generator, closed-book (labs/03_lora.ipynb)
- hybrid: a generator fine-tuned to read retrieved chunks (labs/04_hybrid.ipynb)
Each returns the Generation objects (text, prompt tokens, seconds) in question order, and the RAG
variants also the ranked document ids they retrieved, ready for `evaluate.score`.

>>> answers = closed_book(data.load_questions("eval")[:2])                    # doctest: +SKIP
"""
import functools
import re

from . import models, prompts
from . import evaluate

MAX_NEW_TOKENS = 64
# The hybrid is trained to follow the house style, so its prompt drops the long instructions.
HYBRID_SYSTEM = "You are Cairn, the customer-service assistant of Cairnfield Outfitters."


def hybrid_messages(question: str, hits, system: str = HYBRID_SYSTEM) -> list[dict]:
    """Retrieved chunks + question, with a one-line system prompt: what the hybrid model sees."""
    question = prompts.check_question(question)
    if not hits:
        raise ValueError("No retrieved context: search the retriever first.")
    user = f"Context:\n{prompts.format_context(hits)}\n\nQuestion: {question}"
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def closed_book(questions: list[dict], model=None, tokenizer=None, batch_size: int = 32,
                max_new_tokens: int = MAX_NEW_TOKENS) -> list:
    """Answers from the model alone (base model, or a closed-book LoRA model via `model=`)."""
    convs = [prompts.closed_book_messages(q["question"]) for q in questions]
    return models.generate_many(convs, max_new_tokens, model, tokenizer, batch_size=batch_size)


def retrieval_augmented(questions: list[dict], retriever, k: int = 3, model=None, tokenizer=None,
                        messages=prompts.rag_messages, batch_size: int = 32,
                        max_new_tokens: int = MAX_NEW_TOKENS, prefix: str = "") -> tuple[list, list[list[str]]]:
    """(answers, retrieved doc ids) with the k best chunks in the prompt; `messages` builds the prompt
    (prompts.rag_messages for RAG, hybrid_messages for the hybrid); prefix: a forced answer start."""
    hits = retriever.search_many([q["question"] for q in questions], k=k)
    convs = [messages(q["question"], h) for q, h in zip(questions, hits)]
    answers = models.generate_many(convs, max_new_tokens, model, tokenizer, batch_size=batch_size,
                                   prefix=prefix)
    return answers, [[h.doc_id for h in hs] for hs in hits]


def rag_variant(name: str) -> dict:
    """The keyword arguments of `retrieval_augmented` for one of prompts.RAG_VARIANTS:
    `retrieval_augmented(qs, retriever, **rag_variant(name))`."""
    if name not in prompts.RAG_VARIANTS:
        raise ValueError(f"unknown RAG variant {name!r}; the variants are {list(prompts.RAG_VARIANTS)}")
    k, instruction, example, prefix = prompts.RAG_VARIANTS[name]
    return {"k": k, "prefix": prefix,
            "messages": functools.partial(prompts.rag_messages, instruction=instruction, example=example)}


def templated(answer: str, retrieved: list[str], signoff: str, max_words: int = 50) -> str:
    r"""RAG + template: the house format added by code, not learned.

    The answer's body (its lines joined, any Source line and sign-off removed), cut after the last
    sentence that fits in max_words, then the sign-off and a Source line naming the first retrieved
    document (`Source: none` when the body declines). It cannot change the body's words: tone and
    house vocabulary stay as the reader wrote them.

    >>> print(templated("The Glowpoint runs 6 hours.\nHappy trails!\nSource: [x]", ["lantern"], "Happy trails!"))
    The Glowpoint runs 6 hours. Happy trails!
    Source: [lantern]
    >>> print(templated("It runs 6 hours.", ["lantern"], ""))   # no house sign-off (your own documents)
    It runs 6 hours.
    Source: [lantern]
    """
    body = re.sub(r"Source:\s*(?:none|\[[^\]\n]*\](?:,\s*\[[^\]\n]*\])*)", " ", answer, flags=re.I)
    body = " ".join((body.replace(signoff, " ") if signoff else body).split())  # "" would split every character
    words = body.split()
    if len(words) > max_words:
        cut = " ".join(words[:max_words])
        end = max(cut.rfind(". "), cut.rfind("! "), cut.rfind("? "), cut.rfind("."))
        body = cut[:end + 1] if end > 0 else cut
    body = body.strip() or "I'm sorry, I can't answer that."
    source = "none" if evaluate.abstained(body) or not retrieved else f"[{retrieved[0]}]"
    return f"{body} {signoff}".rstrip() + f"\nSource: {source}"


TEMPLATE = "RAG + template"


def with_template(rag_rows, questions: list[dict], retriever, k: int, signoff: str,
                  retrieved: list[list[str]] | None = None):
    """The score table of RAG + template: RAG's saved answers (a score table with `id`, `answer` and
    the cost columns) through `templated`, scored with `evaluate.score`. The source is the first
    retrieved document: `retrieved` as RAG got it, or found again with the same retriever and k
    (rows read back from results/ keep no ranking). The cost columns stay RAG's: the reader did that
    work, and the template adds only string operations."""
    if retrieved is None:
        hits = retriever.search_many([q["question"] for q in questions], k=k)
        retrieved = [[h.doc_id for h in hs] for hs in hits]
    by_id = rag_rows.set_index("id")
    missing = [q["id"] for q in questions if q["id"] not in by_id.index]
    if missing:
        raise ValueError(f"RAG has no answer to {missing[:5]}: score RAG on the same questions first.")
    answers = [templated(by_id.answer[q["id"]], ids, signoff) for q, ids in zip(questions, retrieved)]
    table = evaluate.score(questions, answers, retrieved, system=TEMPLATE, k=k)
    for col in ["prompt_tokens", "new_tokens", "seconds"]:
        table[col] = by_id.loc[table.id, col].to_numpy()
    return table
