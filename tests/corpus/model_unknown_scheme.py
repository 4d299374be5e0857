"""A model in an S3 bucket: llmprov fetches from Hugging Face, Ollama, HTTPS or the controller."""

servers = [
    ("edge-1", {"engine": "llamacpp", "model": "s3://models/qwen2.5-0.5b-q4_k_m.gguf"}),
]
