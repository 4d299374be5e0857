"""expose_unauthenticated without the networks that may reach the port."""

servers = [
    (
        "edge-1",
        {
            "engine": "ollama",
            "model": "ollama://llama3.2:3b",
            "bind": "0.0.0.0",
            "expose_unauthenticated": True,
        },
    ),
]
