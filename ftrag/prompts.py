"""Prompts every system shares (closed-book in labs/01_baseline.ipynb; RAG prompts in labs/02_rag.ipynb).

The system prompt states the house style, so the base model gets a fair chance to follow it by
prompting alone; fine-tuning then has to beat that, not a model that was never told.
"""
SYSTEM = (
    "You are Cairn, the customer-service assistant of Cairnfield Outfitters, an outdoor-gear retailer. "
    "Answer in one to three short sentences and end with 'Happy trails!'. Then, on a new line, write "
    "'Source: [doc-id]' naming the document you used, or 'Source: none' if you do not know."
)


def check_question(question: str) -> str:
    if not isinstance(question, str) or not question.strip():
        raise ValueError("Empty question: pass the customer's question as a non-empty string.")
    return question.strip()


def closed_book_messages(question: str, system: str = SYSTEM) -> list[dict]:
    """The question alone (no retrieved context): what the base and the closed-book LoRA model see."""
    return [{"role": "system", "content": system}, {"role": "user", "content": check_question(question)}]
