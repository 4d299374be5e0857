"""A host name with a newline in it (it reaches unit comments and file paths)."""

servers = [
    ("edge-1\n[Install]", {"engine": "ollama", "model": "ollama://llama3.2:3b"}),
]
