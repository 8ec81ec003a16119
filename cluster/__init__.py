"""Ray clusters inside SLURM allocations (``ionops.cluster``).

Public surface: filled in as the cluster tooling lands.
"""

__all__: list[str] = []
