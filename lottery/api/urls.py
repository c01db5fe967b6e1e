from django.urls import path

from lottery.api import me, views

urlpatterns = [
    path("auth/register/", views.RegisterView.as_view(), name="auth-register"),
    path("auth/token/", views.TokenView.as_view(), name="auth-token"),
    path("me/", views.MeView.as_view(), name="me"),
    path("me/tickets/", me.MyTicketsView.as_view(), name="me-tickets"),
]
