"""Pure logic of `llmprov advise`: workloads, SLOs, goodput and knee, the recommendation, the report."""
