"""An IPv4 address with an octet above 255."""

servers = [
    ("edge-1", {"engine": "ollama", "model": "ollama://llama3.2:3b", "bind": "10.0.0.256"}),
]
