"""Accounts and auth: password hashing, access tokens, and the signed-in viewer."""
