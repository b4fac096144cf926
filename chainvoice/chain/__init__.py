"""The chain: blocks and headers, commit certificates, the consortium, block execution and proofs.

Pure code: no I/O, clock or randomness. Formats here are fixed by SPEC §5.
"""
