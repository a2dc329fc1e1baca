"""Stand-in for Kaapana's own ``kaapana`` package, which the test DAGs import unchanged."""
