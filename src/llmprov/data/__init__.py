"""Package data: the CUDA matrix facts (cuda_matrix.json)."""
