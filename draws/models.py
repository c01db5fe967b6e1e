"""Models of the draws app (added by later issues)."""
