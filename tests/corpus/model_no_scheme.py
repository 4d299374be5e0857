"""A model name without a scheme: is it an Ollama tag, a Hugging Face repository or a file?"""

servers = [
    ("edge-1", {"engine": "ollama", "model": "llama3.2:3b"}),
]
