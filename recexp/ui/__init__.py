"""Streamlit-facing helpers: the only part of recexp that imports streamlit."""
