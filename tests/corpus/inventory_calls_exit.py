"""An inventory that calls sys.exit() while it is loaded."""

import sys

servers = [("edge-1", {"engine": "ollama", "model": "ollama://llama3.2:3b"})]
sys.exit(3)
