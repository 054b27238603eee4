"""The Assistants engine: serves the Assistants API itself, its state in Redis."""
