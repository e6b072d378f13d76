"""Users, roles and permissions, login and API tokens, and the append-only audit log."""
