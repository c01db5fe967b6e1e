from django.conf import settings
from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from core import exceptions as domain
from core import health
from core.errors import problem_response
from core.metrics import metrics_view
from core.ratelimit import client_ip, enforce_rate_limit


def _posted_username(group: str, request: HttpRequest) -> str:
    return request.POST.get("username", "").strip().lower()[:150]


def admin_login(request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
    """The admin's login, with login attempts rate-limited per address and per username.

    Fails closed like ``POST /auth/token/``: 429 beyond the limit, 503 when the cache
    that counts attempts cannot be reached (problem JSON, with ``Retry-After``).
    """
    if request.method == "POST":
        try:
            enforce_rate_limit(
                request,
                group="admin.login.ip",
                rate=settings.RATE_LIMIT_ADMIN_LOGIN_PER_IP,
                key=client_ip,
            )
            enforce_rate_limit(
                request,
                group="admin.login.username",
                rate=settings.RATE_LIMIT_ADMIN_LOGIN_PER_USERNAME,
                key=_posted_username,
            )
        except (domain.RateLimited, domain.ServiceUnavailable) as refused:
            return problem_response(refused)
    return admin.site.login(request, extra_context)


api_v1 = [
    path("", include("lottery.api.urls")),
    path("", include("reservations.api.urls")),
    path("", include("purchases.api.urls")),
    path("", include("draws.api.urls")),
    path("", include("watchlist.api.urls")),
    path("schema/", SpectacularAPIView.as_view(api_version="v1"), name="schema"),
]

urlpatterns = [
    path("", RedirectView.as_view(url="/api/docs/", permanent=False)),
    path("admin/login/", admin_login, name="admin-login"),
    path("admin/", admin.site.urls),
    path("api/v1/", include(api_v1)),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("health/live/", health.live, name="health-live"),
    path("health/ready/", health.ready, name="health-ready"),
    path("metrics", metrics_view, name="metrics"),
]

handler400 = "core.errors.bad_request"
handler403 = "core.errors.permission_denied"
handler404 = "core.errors.page_not_found"
handler500 = "core.errors.server_error"
