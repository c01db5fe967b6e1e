from django.urls import path

from reservations.api import houses, views

urlpatterns = [
    path("houses/", houses.HouseListView.as_view(), name="houses"),
    path("houses/<int:house_id>/", houses.HouseDetailView.as_view(), name="house-detail"),
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
