"""A file:// model that is not on the controller (paths are relative to this inventory)."""

servers = [
    ("edge-1", {"engine": "llamacpp", "model": "file://models/qwen2.5-0.5b-q4_k_m.gguf"}),
]
