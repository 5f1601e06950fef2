"""Checks ``make deploy`` runs on a samconfig.toml environment before SAM sees it (standard library only)."""
