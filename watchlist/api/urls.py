from django.urls import path

from watchlist.api import views

urlpatterns = [
    path("watchlist/", views.WatchlistView.as_view(), name="watchlist"),
    path("watchlist/<int:house_id>/", views.WatchlistItemView.as_view(), name="watchlist-item"),
]
