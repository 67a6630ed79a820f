"""Session recordings. Never imports textual."""
