"""Load and fault-injection commands run by hand (not collected by pytest)."""
