"""Placeholder while this factor is written; it registers nothing yet."""
