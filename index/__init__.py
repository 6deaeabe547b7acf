"""Building, persisting and loading versioned index artifacts (FAISS + vectorizer + ad table)."""
