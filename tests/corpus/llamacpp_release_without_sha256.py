"""An upstream llama.cpp release to build, without the sha256 of its source archive."""

servers = [
    (
        "edge-1",
        {
            "engine": "llamacpp",
            "model": "hf://org/repo/m.gguf",
            "llamacpp": {"release": "b6710"},
        },
    ),
]
