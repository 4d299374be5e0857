"""allow_from with a network that has host bits set."""

servers = [
    (
        "edge-1",
        {
            "engine": "ollama",
            "model": "ollama://llama3.2:3b",
            "bind": "0.0.0.0",
            "expose_unauthenticated": True,
            "allow_from": ["10.0.0.1/24"],
        },
    ),
]
