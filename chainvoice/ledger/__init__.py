"""The invoice business: transactions and their schemas, records, and every state rule (SPEC §3–§4).

Pure code: no I/O, clock or randomness. ``transaction`` turns bytes into checked transactions,
``rules.apply`` turns a transaction and a state view into a receipt and writes.
"""
