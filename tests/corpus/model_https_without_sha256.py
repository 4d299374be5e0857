"""A model downloaded over HTTPS with no digest to check it against."""

servers = [
    (
        "edge-1",
        {
            "engine": "llamacpp",
            "model": "https://models.example.com/qwen2.5-0.5b-instruct-q4_k_m.gguf",
        },
    ),
]
