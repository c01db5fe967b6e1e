from django.urls import path

from draws.api.views import (
    DrawConductView,
    DrawDetailView,
    DrawListView,
    DrawTicketsView,
    MyStatsView,
    MyTicketProofView,
)

urlpatterns = [
    path("draws/", DrawListView.as_view(), name="draws-list"),
    path("draws/<int:draw_id>/", DrawDetailView.as_view(), name="draws-detail"),
    path("draws/<int:draw_id>/tickets/", DrawTicketsView.as_view(), name="draws-tickets"),
    path("draws/<int:draw_id>/conduct/", DrawConductView.as_view(), name="draws-conduct"),
    path("me/tickets/<int:ticket_id>/proof/", MyTicketProofView.as_view(), name="me-ticket-proof"),
    path("me/stats/", MyStatsView.as_view(), name="me-stats"),
]
