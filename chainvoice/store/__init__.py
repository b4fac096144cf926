"""Storage: what a node keeps (blocks, certificates, receipts, state, indexes, safety state).

``chainstore`` holds the layout and the commit logic over a small key-value interface; ``kv``
has the in-memory backend, ``leveldb`` the plyvel one (the embedded default).
"""
