"""Helpers for the book "Fine-Tuning vs RAG — measured".

Each module says which lab explains it: models (lab 00), data (lab 00, datasheet), evaluate (lab 00).
"""
__version__ = "0.1.0"
