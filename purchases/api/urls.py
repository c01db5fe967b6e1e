from django.urls import path

from purchases.api.checkout import ReservationCheckoutView
from purchases.api.tickets import MyTicketsView

urlpatterns = [
    path("me/tickets/", MyTicketsView.as_view(), name="me-tickets"),
    path(
        "reservations/<uuid:reservation_id>/checkout/",
        ReservationCheckoutView.as_view(),
        name="reservation-checkout",
    ),
]
