"""HTTP checks (smoke, throughput) through an injected httpx client."""
