"""llmprov: provision local LLM inference servers on pyinfra inventories and prove they work."""

__version__ = "0.1.0"
