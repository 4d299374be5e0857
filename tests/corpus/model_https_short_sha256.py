"""An HTTPS model whose '#sha256=' fragment is not a full digest."""

servers = [
    (
        "edge-1",
        {
            "engine": "llamacpp",
            "model": "https://models.example.com/qwen2.5-0.5b-instruct-q4_k_m.gguf#sha256=deadbeef",
        },
    ),
]
