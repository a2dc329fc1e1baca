"""Stand-in for ``kaapana.blueprints``."""
