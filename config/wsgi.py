import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

application = get_wsgi_application()

from core.checks import raise_on_configuration_errors  # noqa: E402  (needs apps loaded)

raise_on_configuration_errors()
