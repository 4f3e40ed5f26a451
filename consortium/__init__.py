"""Tenancy: consortia, participants, memberships and roles, API keys, access helpers, audit log."""
