"""Draw writes: close due houses, freeze their tickets, cancel or draw, conduct and redraw.

- ``closing``: houses past their sales end (or sold out) close; each closed house
  gets one scheduled draw.
- ``freezing``: once no purchase is in flight, a scheduled draw freezes the ticket
  list, reveals the seed and fixes the beacon round; an under-subscribed house is
  cancelled instead (``cancelling``: every purchase refunded).
- ``running``: the drand runner and staff (``conduct_draw``) complete a frozen draw
  under its row lock; ``redraw``: staff disqualify a winner.
- ``passes.run_due``: one pass of all of it (beat every minute, ``manage.py run_draws``).
"""
