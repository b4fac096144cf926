"""chainvoice: a permissioned PBFT ledger for the whole life of an invoice."""
