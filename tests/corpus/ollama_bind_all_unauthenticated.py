"""Ollama on every interface: it has no key, so the inventory must say so."""

servers = [
    ("edge-1", {"engine": "ollama", "model": "ollama://llama3.2:3b", "bind": "0.0.0.0"}),
]
