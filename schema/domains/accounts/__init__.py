"""Accounts: registering and signing in."""
