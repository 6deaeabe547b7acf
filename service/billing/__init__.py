"""Pay-per-click money: click decisions and impression counts (Lua in ``lua/``), signed click
tokens, the ledger and reports."""
