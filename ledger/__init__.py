"""The tamper-evident append-only ledger: entries, postings, Merkle proofs, checkpoints."""
