"""Model files on the controller: fetched (hf://, https://), converted (GGUF <-> Hugging Face), imported into Ollama."""
