from django.urls import path

from reservations.api import views

urlpatterns = [
    path("reservations/", views.ReservationCollectionView.as_view(), name="reservations"),
    path(
        "reservations/<uuid:reservation_id>/",
        views.ReservationDetailView.as_view(),
        name="reservation-detail",
    ),
    path(
        "reservations/<uuid:reservation_id>/cancel/",
        views.ReservationCancelView.as_view(),
        name="reservation-cancel",
    ),
]
