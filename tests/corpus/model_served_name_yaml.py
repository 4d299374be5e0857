"""A served name derived from an hf:// file part holding YAML syntax."""

servers = [
    ("edge-1", {"engine": "llamacpp", "model": "hf://org/repo/x: {a: b}.gguf"}),
]
