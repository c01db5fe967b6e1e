"""Models of the reservations app (added by later issues)."""
