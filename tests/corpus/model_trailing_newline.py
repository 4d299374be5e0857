"""A model reference with a trailing newline (it would end a unit line and a YAML scalar)."""

servers = [
    ("edge-1", {"engine": "ollama", "model": "ollama://llama3.2:3b\n"}),
]
