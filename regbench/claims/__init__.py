"""`regbench claims`: every claim the lecture decks make, as a staged experiment, and the ledger
of their verdicts (catalogue: the claim files; runner: one claim's staged sweep; ledger: the
table)."""
