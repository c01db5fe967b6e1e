"""Schema and Swagger UI (local assets), deprecation headers, beat schedule, demo data."""

from datetime import UTC, datetime

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.urls import path
from django_celery_beat.models import PeriodicTask
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from config.beat import BEAT_SCHEDULE
from config.urls import urlpatterns as real_urlpatterns
from core.beat_schedule import sync_beat_schedule
from core.deprecation import deprecated
from lottery.demo import DEMO_HOUSES
from lottery.models import House, PlayerProfile


@deprecated(
    since=datetime(2026, 1, 1, tzinfo=UTC),
    sunset=datetime(2026, 12, 31, tzinfo=UTC),
    link="/api/v2/thing/",
)
class OldView(APIView):
    permission_classes = [AllowAny]

    def get(self, request):
        return Response({"old": True})


urlpatterns = [path("api/v1/_test/old/", OldView.as_view()), *real_urlpatterns]


@pytest.mark.django_db
def test_schema_is_served_as_openapi_3(client):
    response = client.get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    assert "/api/v1/auth/token/" in schema["paths"]


@pytest.mark.django_db
def test_swagger_ui_uses_local_assets_only(client):
    page = client.get("/api/docs/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "cdn" not in html.lower()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in html
    asset = client.get("/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js")
    assert asset.status_code == 200


@pytest.mark.django_db
def test_deprecated_view_announces_deprecation_and_sunset(client, settings):
    settings.ROOT_URLCONF = __name__
    response = client.get("/api/v1/_test/old/")
    assert response.status_code == 200
    assert response["Deprecation"] == f"@{int(datetime(2026, 1, 1, tzinfo=UTC).timestamp())}"
    assert response["Sunset"] == "Thu, 31 Dec 2026 00:00:00 GMT"
    assert response["Link"] == '</api/v2/thing/>; rel="successor-version"'


@pytest.mark.django_db
def test_beat_schedule_is_written_from_code_and_is_idempotent():
    sync_beat_schedule()
    created, updated, disabled = sync_beat_schedule()
    assert (created, disabled) == (0, 0)
    assert updated == len(BEAT_SCHEDULE)
    rows = {task.name: task for task in PeriodicTask.objects.filter(enabled=True)}
    for job in BEAT_SCHEDULE:
        assert rows[job.name].task == job.task
        assert rows[job.name].interval.every == job.every_seconds


@pytest.mark.django_db
def test_undeclared_managed_jobs_are_disabled():
    sync_beat_schedule()
    PeriodicTask.objects.filter(name=BEAT_SCHEDULE[0].name).update(name="retired job")
    sync_beat_schedule()
    assert PeriodicTask.objects.get(name="retired job").enabled is False


@pytest.mark.django_db
def test_seed_demo_is_idempotent():
    call_command("seed_demo")
    users = get_user_model().objects.count()
    call_command("seed_demo")
    assert get_user_model().objects.count() == users
    assert get_user_model().objects.get(username="admin").is_staff
    alice = PlayerProfile.objects.get(user__username="alice")
    assert alice.is_eligible
    assert not PlayerProfile.objects.get(user__username="carol").is_verified
    statuses = set(House.objects.values_list("status", flat=True))
    assert {"active", "paused", "draft", "closed"} <= statuses
    assert House.objects.count() == len(DEMO_HOUSES)


@pytest.mark.django_db
def test_demo_houses_are_listed_by_the_api(client):
    call_command("seed_demo")
    titles = {house["title"] for house in client.get("/api/v1/houses/").json()["results"]}
    assert "Seaside villa in Cascais" in titles
    assert "Loft in Kreuzberg" not in titles  # drafts are invisible
