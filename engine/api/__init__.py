"""The engine's HTTP operations, a blueprint per resource."""
