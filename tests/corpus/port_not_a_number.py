"""A port given as a word. ("8000" would be accepted as 8000; "http" is no port.)"""

servers = [
    ("gpu-1", {"engine": "vllm", "model": "hf://Qwen/Qwen2.5-0.5B-Instruct", "port": "http"}),
]
