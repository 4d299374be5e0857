"""A host name where an IP address belongs: bind takes an address to listen on."""

servers = [
    ("edge-1", {"engine": "ollama", "model": "ollama://llama3.2:3b", "bind": "localhost"}),
]
