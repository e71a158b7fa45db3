"""Credentials: password hashing (argon2id) and the secrets behind sessions and tokens."""
