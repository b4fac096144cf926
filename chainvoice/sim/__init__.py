"""A deterministic, seeded simulator of a whole consortium in one process.

Real ``Replica`` objects, each on its own ``Chain`` and ``ChainStore`` (in-memory key-value) from
one genesis, talk through a simulated network that drops, delays, duplicates and reorders
messages, partitions (also one way), and crashes and restarts replicas (a restart keeps only the
store and the last persisted safety state). Byzantine behaviours, a workload of real invoice life
cycles, and a checker of safety (S1-S3) and liveness (L). A seed reproduces a run exactly.

Modules: ``prng`` (the only randomness: splitmix64), ``cast`` (genesis and actors), ``network``,
``simulation`` (event loop, nodes, crashes), ``byzantine``, ``workload``, ``faults`` (random fault
schedules), ``checker``, ``run`` (one seeded run end to end).
"""
