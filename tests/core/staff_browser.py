"""A staff user in the admin, as a browser drives it: GET the page, fill its form, POST it.

CSRF is enforced; the token comes from the page's own form, as in a real browser.
"""

from html.parser import HTMLParser

from django.db.models import Model
from django.http import HttpResponse
from django.test import Client
from django.urls import reverse

SKIPPED_INPUTS = {"submit", "button", "file", "image", "reset"}


class _Forms(HTMLParser):
    """Every ``<form>`` of a page: its id and the fields a browser would submit."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict] = []
        self._select: str | None = None
        self._select_first: str | None = None
        self._select_chosen = False
        self._textarea: str | None = None

    @property
    def _fields(self) -> list[tuple[str, str]]:
        return self.forms[-1]["fields"]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append(
                {"id": a.get("id", ""), "method": a.get("method", "get").lower(), "fields": []}
            )
        elif not self.forms:
            return
        elif tag == "input" and a.get("name"):
            kind = a.get("type", "text").lower()
            if kind in SKIPPED_INPUTS or (kind in ("checkbox", "radio") and "checked" not in a):
                return
            self._fields.append((a["name"], a.get("value", "on" if kind == "checkbox" else "")))
        elif tag == "textarea" and a.get("name"):
            self._textarea = a["name"]
            self._fields.append((a["name"], ""))
        elif tag == "select" and a.get("name"):
            self._select, self._select_first, self._select_chosen = a["name"], None, False
        elif tag == "option" and self._select is not None:
            value = a.get("value", "")
            if self._select_first is None:
                self._select_first = value
            if "selected" in a:
                self._fields.append((self._select, value))
                self._select_chosen = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "select" and self._select is not None:
            if not self._select_chosen and self._select_first is not None:
                self._fields.append((self._select, self._select_first))
            self._select = None
        elif tag == "textarea":
            self._textarea = None

    def handle_data(self, data: str) -> None:
        if self._textarea is not None:
            name, value = self._fields[-1]
            self._fields[-1] = (name, value + data.lstrip("\n") if not value else value + data)


def page_forms(html: str) -> list[dict]:
    parser = _Forms()
    parser.feed(html)
    return parser.forms


def _as_data(fields: list[tuple[str, str]]) -> dict[str, list[str]]:
    data: dict[str, list[str]] = {}
    for name, value in fields:
        data.setdefault(name, []).append(value)
    return data


class StaffBrowser:
    def __init__(self, client: Client) -> None:
        assert client.handler.enforce_csrf_checks
        self.client = client

    def form_of(self, url: str, form_id: str | None = None) -> dict[str, list[str]]:
        page = self.client.get(url)
        assert page.status_code == 200, (url, page.status_code)
        forms = [
            form
            for form in page_forms(page.content.decode())
            if form["method"] == "post" and (form_id is None or form["id"] == form_id)
        ]
        assert forms, f"no POST form {form_id or ''} on {url}"
        # Without an id: the page's main form (the header's logout form is a POST form too).
        data = _as_data(max(forms, key=lambda form: len(form["fields"]))["fields"])
        assert data.get("csrfmiddlewaretoken"), f"the form on {url} carries no CSRF token"
        return data

    def submit(self, url: str, changes: dict[str, str], form_id: str | None = None) -> HttpResponse:
        """Open the page, change some fields of its form, submit it; expect a redirect."""
        data = self.form_of(url, form_id)
        data.update({name: [value] for name, value in changes.items()})
        response = self.client.post(url, data)
        assert response.status_code == 302, self._errors(response)
        return response

    def run_action(
        self, obj: Model, action: str, confirm: dict[str, str] | None = None
    ) -> HttpResponse:
        """Select ``obj`` on its list page and run ``action``, through any confirmation page.

        ``confirm`` fills fields of that page's form (e.g. a required reason).
        """
        meta = obj._meta
        url = reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist")
        token = self.form_of(url, "changelist-form")["csrfmiddlewaretoken"]
        response = self.client.post(
            url,
            {
                "csrfmiddlewaretoken": token,
                "action": action,
                "_selected_action": [str(obj.pk)],
                "index": "0",
            },
        )
        if response.status_code == 200:  # an intermediate page: confirm it as staff would
            forms = [f for f in page_forms(response.content.decode()) if f["method"] == "post"]
            assert forms, f"action {action} answered a page without a form"
            data = _as_data(forms[-1]["fields"])
            data.update({name: [value] for name, value in (confirm or {}).items()})
            response = self.client.post(url, data)
        assert response.status_code == 302, self._errors(response)
        return response

    @staticmethod
    def _errors(response: HttpResponse) -> str:
        context = getattr(response, "context", None)
        if context is not None and "adminform" in context:
            return str(context["adminform"].form.errors)
        return f"{response.status_code}: {response.content[:2000]!r}"
