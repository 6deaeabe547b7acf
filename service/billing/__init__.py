"""Pay-per-click money: click decisions and impression counts (Lua in ``lua/``), encrypted click
tokens, pseudonyms, the ledger, its archive and reports."""
