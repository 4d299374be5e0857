"""Host data with a key that is not a string."""

servers = [
    ("edge-1", {"engine": "ollama", "model": "ollama://llama3.2:3b", 1: "one"}),
]
