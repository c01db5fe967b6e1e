"""Models of the payments app (added by later issues)."""
