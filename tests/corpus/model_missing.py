"""An engine without a model to serve."""

servers = [
    ("edge-1", {"engine": "llamacpp"}),
]
