"""An IPv6 bind address with a scope id that carries a shell substitution."""

servers = [
    ("edge-1", {"engine": "ollama", "model": "ollama://llama3.2:3b", "bind": "fe80::1%$(reboot)"}),
]
