"""Prompts every system shares (closed-book in labs/01_baseline.ipynb; RAG prompts in labs/02_rag.ipynb).

The system prompt states the house style, so the base model gets a fair chance to follow it by
prompting alone; fine-tuning then has to beat that, not a model that was never told.
"""
import re

from .retrieval import Hit, check_question  # one direction only: retrieval never imports prompts

SYSTEM = (
    "You are Cairn, the customer-service assistant of Cairnfield Outfitters, an outdoor-gear retailer. "
    "Answer in one to three short sentences and end with 'Happy trails!'. Then, on a new line, write "
    "'Source: [doc-id]' naming the document you used, or 'Source: none' if you do not know."
)


def closed_book_messages(question: str, system: str = SYSTEM) -> list[dict]:
    """The question alone (no retrieved context): what the base and the closed-book LoRA model see."""
    return [{"role": "system", "content": system}, {"role": "user", "content": check_question(question)}]



# The RAG prompt (labs/02_rag.ipynb): SYSTEM already asks for the Source line; the instruction adds the
# two rules retrieval needs. Shorter wording scored better than a longer one that also repeated the
# citation rule: the 135M model tends to echo long instructions back ("The document you used ...").
RAG_INSTRUCTION = ("Answer the question in one sentence using only the context. If the context does not "
                   "answer it, say: I'm sorry, our knowledge base doesn't cover that.")

# One worked example shown before the real question (one-shot prompting): the small model copies its
# shape - the fact in one sentence, the sign-off, the Source line. The lantern is made up, so the
# example cannot leak an answer from the knowledge base.
EXAMPLE_QUESTION = "How long does the Glowpoint lantern last on high?"
EXAMPLE_HITS = (Hit("lantern-glowpoint", 0, "Glowpoint camping lantern",
                    "The Glowpoint is a rechargeable camping lantern made by Cairnfield Outfitters. The Glowpoint "
                    "costs $35 and weighs 210 g. The Glowpoint runs for 40 hours on its low setting and 6 hours on "
                    "its high setting, and it recharges over USB-C in 3 hours.", 1.0),)
EXAMPLE_ANSWER = "The Glowpoint runs for 6 hours on its high setting. Happy trails!\nSource: [lantern-glowpoint]"


def format_context(hits) -> str:
    """Numbered context blocks, each labelled with its source id so the model can cite it.

    >>> print(format_context([Hit("returns-policy", 0, "Returns", "Within 45 days.", 0.9)]))
    Document 1 [returns-policy]: Returns
    Within 45 days.
    """
    return "\n\n".join(f"Document {i} [{h.doc_id}]: {h.title}\n{h.text}" for i, h in enumerate(hits, 1))


def context_turn(question: str, hits, instruction: str = RAG_INSTRUCTION) -> dict:
    """The user turn of a RAG prompt: context, instruction, question."""
    question = check_question(question)
    if not hits:
        raise ValueError("No retrieved context: search the retriever first (or use closed_book_messages).")
    return {"role": "user", "content": f"Context:\n{format_context(hits)}\n\n{instruction}\n\nQuestion: {question}"}


def rag_messages(question: str, hits, system: str = SYSTEM, instruction: str = RAG_INSTRUCTION,
                 example: bool = True) -> list[dict]:
    """The question with retrieved chunks (Hit objects, best first) as context: what a RAG system sends.

    example: put the worked example (a made-up context, question and house-style answer) first.
    """
    turns = [{"role": "system", "content": system}]
    if example:
        turns += [context_turn(EXAMPLE_QUESTION, EXAMPLE_HITS, instruction),
                  {"role": "assistant", "content": EXAMPLE_ANSWER}]
    return turns + [context_turn(question, hits, instruction)]


# The RAG prompt variants lab 2 tries on the development split, simplest first; `ftrag.tuning`'s rule
# keeps one, and later labs build RAG from the variant lab 2 saved (`systems.rag_variant`).
FIRST_INSTRUCTION = (
    "Answer the question using only the context above. If the context does not contain the "
    "answer, say that our knowledge base doesn't cover it and write 'Source: none'. "
    "Otherwise cite the id of the document you used, in square brackets."
)
RAG_VARIANTS = {  # name: (chunks in the prompt, instruction, worked example, forced answer prefix)
    "3 chunks, long instruction": (3, FIRST_INSTRUCTION, False, ""),
    "1 chunk, long instruction": (1, FIRST_INSTRUCTION, False, ""),
    "1 chunk, short instruction, worked example": (1, RAG_INSTRUCTION, True, ""),
    "1 chunk, worked example, answer prefix": (1, RAG_INSTRUCTION, True, "Based on the context,"),
}
DEFAULT_RAG_VARIANT = "1 chunk, short instruction, worked example"


# For your own documents (python -m ftrag index DIR --ask ...): the same rules without the shop persona.
OWN_DOCS_SYSTEM = (
    "You are a helpful assistant. Answer in one to three short sentences. Then, on a new line, write "
    "'Source: [doc-id]' naming the document you used, or 'Source: none' if the context does not say."
)


# What a reader writes when it repeats its prompt instead of answering: the RAG prompt's own labels
# (see ftrag.prompts.context_turn). Seen with the 135M reader on licence texts:
# "Document 3 [gfdl-1-3]: Document 3 ... Question: ...".
ECHO_MARKERS = (r"\bDocument \d+ \[[^\]\n]*\]", r"(?m)^\s*Context:", r"\bQuestion:", r"\[doc-id\]")


def prompt_echo(text: str, messages: list[dict] | None = None, min_words: int = 8) -> str | None:
    """The piece of `text` that repeats the prompt's scaffold instead of answering it, or None.

    It looks for the prompt's labels (Document N [id], Context:, Question:) and, given the `messages`,
    for a run of `min_words` words copied from a system turn. Quoting the retrieved context is no echo:
    an answer may rightly repeat a sentence of a document.

    >>> prompt_echo("Document 3 [gfdl-1-3]: GNU Free Documentation License ... Question: what is it?")
    'Document 3 [gfdl-1-3]'
    >>> prompt_echo("Returns are accepted within 45 days.") is None
    True
    """
    for pattern in ECHO_MARKERS:
        found = re.search(pattern, text)
        if found:
            return found.group(0).strip()
    words = re.findall(r"\w+", text.lower())
    runs = {" ".join(words[i:i + min_words]) for i in range(len(words) - min_words + 1)}
    for m in messages or []:
        if m.get("role") == "system":
            own = re.findall(r"\w+", str(m.get("content", "")).lower())
            for i in range(len(own) - min_words + 1):
                if " ".join(own[i:i + min_words]) in runs:
                    return " ".join(own[i:i + min_words])
    return None
