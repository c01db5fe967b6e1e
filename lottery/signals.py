"""Signals lottery declares so that higher apps can react without lottery importing them."""

from django.dispatch import Signal

# Sent after the commit of a staff change to a house (limits, status, soft delete).
# Keyword argument: ``house_id``. The reservations app rebuilds its Redis inventory.
house_changed = Signal()
