"""PBFT consensus as a pure state machine: the replica turns received messages, timer expiries and
client transactions into actions (send, set timer, persist safety state, commit, record evidence,
drop) that a shell carries out. No I/O, clock or randomness: the same ``Replica`` runs inside the
deterministic simulator (``chainvoice.sim``) and inside the real node.

Modules, most important first:
  replica    the PBFT state machine (Castro & Liskov, OSDI'99 §4): normal case, view change,
             catch-up decisions
  safety     the only holder of the node key: refuses any vote that could break safety and
             persists what it signed before a vote is released (DiemBFT's safety rules)
  messages   consensus messages, their canonical signed encoding, decode and verify
  quorum     vote collection, prepared proofs, commit certificates, the NEW-VIEW rule
  evidence   conflicting signed messages by one node (equivocation), kept for the tax authority
  mempool    verified client transactions waiting for a block
  catchup    which certified blocks to fetch from whom when a replica is behind
  actions    what the replica asks its shell to do
  config     every limit, with the reason for its value
"""
