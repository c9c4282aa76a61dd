"""Accounts: registering and signing in, sessions (refreshing, signing out) and passwords."""
