"""Placeholder while this console area is written; it adds no routes yet."""
