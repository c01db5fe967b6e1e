from django.urls import path

from lottery.api import houses, me, views

urlpatterns = [
    path("auth/register/", views.RegisterView.as_view(), name="auth-register"),
    path("auth/token/", views.TokenView.as_view(), name="auth-token"),
    path("me/", views.MeView.as_view(), name="me"),
    path("me/tickets/", me.MyTicketsView.as_view(), name="me-tickets"),
    path("houses/", houses.HouseListView.as_view(), name="houses"),
    path("houses/<int:house_id>/", houses.HouseDetailView.as_view(), name="house-detail"),
]
