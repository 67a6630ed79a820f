"""Headless model: snapshot types, hashing, mapping, paths, events, impact. Never imports textual."""
