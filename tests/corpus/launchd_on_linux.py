"""A launchd runtime on a Linux host."""

servers = [
    ("edge-1", {"engine": "ollama", "runtime": "launchd", "model": "ollama://llama3.2:3b"}),
]
