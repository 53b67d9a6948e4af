"""Helpers for the book "Fine-Tuning vs RAG — measured".

Each module says which lab explains it: models, data, evaluate (lab 00); prompts, retrieval (labs 01-02);
lora (lab 03); systems (lab 04); cost (lab 05); decide (lab 06); scale, lancedb_store (lab 07).
"""
__version__ = "0.1.0"
