"""audit.db's contract: the schema, its migrations and the read side the panel uses."""
