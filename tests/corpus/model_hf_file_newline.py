"""A Hugging Face file part with a newline, which would reach manifests through the served name."""

servers = [
    (
        "edge-1",
        {
            "engine": "llamacpp",
            "model": "hf://org/repo/model\nkind: Secret.gguf",
        },
    ),
]
