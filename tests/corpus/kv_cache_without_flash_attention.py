"""A quantised KV cache without flash attention: Ollama ignores the cache type then."""

servers = [
    (
        "edge-1",
        {"engine": "ollama", "model": "ollama://llama3.2:3b", "ollama": {"kv_cache_type": "q8_0"}},
    ),
]
