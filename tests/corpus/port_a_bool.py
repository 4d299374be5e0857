"""A port given as true (Python would count it as 1)."""

servers = [
    ("edge-1", {"engine": "ollama", "model": "ollama://llama3.2:3b", "port": True}),
]
