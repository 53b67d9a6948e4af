"""The four systems the book compares, as functions from questions to answers (labs/04_hybrid.ipynb).

- base:   the unchanged generator, closed-book (labs/01_baseline.ipynb)
- RAG:    the unchanged generator reading retrieved chunks (labs/02_rag.ipynb)
- LoRA:   a fine-tuned generator, closed-book (labs/03_lora.ipynb)
- hybrid: a generator fine-tuned to read retrieved chunks (labs/04_hybrid.ipynb)
Each returns the Generation objects (text, prompt tokens, seconds) in question order, and the RAG
variants also the ranked document ids they retrieved, ready for `evaluate.score`.

>>> answers = closed_book(data.load_questions("eval")[:2])                    # doctest: +SKIP
"""
from . import models, prompts

MAX_NEW_TOKENS = 64
# The hybrid is trained to follow the house style, so its prompt drops the long instructions.
HYBRID_SYSTEM = "You are Cairn, the customer-service assistant of Cairnfield Outfitters."


def hybrid_messages(question: str, hits) -> list[dict]:
    """Retrieved chunks + question, with a one-line system prompt: what the hybrid model sees."""
    question = prompts.check_question(question)
    if not hits:
        raise ValueError("No retrieved context: search the retriever first.")
    user = f"Context:\n{prompts.format_context(hits)}\n\nQuestion: {question}"
    return [{"role": "system", "content": HYBRID_SYSTEM}, {"role": "user", "content": user}]


def closed_book(questions: list[dict], model=None, tokenizer=None, batch_size: int = 32,
                max_new_tokens: int = MAX_NEW_TOKENS) -> list:
    """Answers from the model alone (base model, or a closed-book LoRA model via `model=`)."""
    convs = [prompts.closed_book_messages(q["question"]) for q in questions]
    return models.generate_many(convs, max_new_tokens, model, tokenizer, batch_size=batch_size)


def retrieval_augmented(questions: list[dict], retriever, k: int = 3, model=None, tokenizer=None,
                        messages=prompts.rag_messages, batch_size: int = 32,
                        max_new_tokens: int = MAX_NEW_TOKENS) -> tuple[list, list[list[str]]]:
    """(answers, retrieved doc ids) with the k best chunks in the prompt; `messages` builds the prompt
    (prompts.rag_messages for RAG, hybrid_messages for the hybrid)."""
    hits = retriever.search_many([q["question"] for q in questions], k=k)
    convs = [messages(q["question"], h) for q, h in zip(questions, hits)]
    answers = models.generate_many(convs, max_new_tokens, model, tokenizer, batch_size=batch_size)
    return answers, [[h.doc_id for h in hs] for hs in hits]
