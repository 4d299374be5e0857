"""llama.cpp built from upstream with no release tag to build."""

servers = [
    (
        "edge-1",
        {
            "engine": "llamacpp",
            "model": "hf://bartowski/SmolLM2-135M-Instruct-GGUF/SmolLM2-135M-Instruct-Q4_K_M.gguf",
            "llamacpp": {"source": "upstream"},
        },
    ),
]
