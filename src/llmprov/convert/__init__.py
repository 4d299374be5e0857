"""Model format conversion on the controller (GGUF to a Hugging Face folder for vLLM)."""
