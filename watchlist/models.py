"""Models of the watchlist app (added by later issues)."""
