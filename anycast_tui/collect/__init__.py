"""How state gets in: SSH sessions, local netlink, the simulated fabric. Never imports textual."""
