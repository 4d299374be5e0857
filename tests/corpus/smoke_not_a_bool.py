"""smoke given as a word that is neither true nor false."""

servers = [
    ("edge-1", {"engine": "ollama", "model": "ollama://llama3.2:3b", "smoke": "sometimes"}),
]
