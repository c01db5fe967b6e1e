""" "On sale" has one definition in three forms (filter, row check, SQL): they always agree."""

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from lottery.models import House
from lottery.on_sale import is_on_sale, on_sale_q, on_sale_sql
from tests.factories import create_house

NOW = timezone.now().replace(microsecond=0)
START, END = NOW - timedelta(hours=1), NOW + timedelta(hours=1)

CASES = [
    # (status, deleted, sales_start_at, sales_end_at, on sale at NOW?)
    ("active", False, START, END, True),
    ("active", False, NOW, END, True),  # the window includes its start...
    ("active", False, START, NOW, False),  # ...and excludes its end
    ("active", False, NOW + timedelta(seconds=1), END, False),
    ("active", True, START, END, False),
    ("paused", False, START, END, False),
    ("draft", False, START, END, False),
    ("closed", False, START, END, False),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("status", "deleted", "start", "end", "expected"), CASES)
def test_filter_row_check_and_sql_agree(status, deleted, start, end, expected) -> None:
    house = create_house(
        status=status,
        deleted_at=NOW if deleted else None,
        sales_start_at=start,
        sales_end_at=end,
    )
    by_filter = House.objects.filter(on_sale_q(NOW), pk=house.pk).exists()
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {on_sale_sql(house='h', now='%s')} FROM lottery_house h WHERE h.id = %s",  # noqa: S608  (fixed text, values bound)
            [NOW, NOW, house.pk],
        )
        (by_sql,) = cursor.fetchone()

    assert (is_on_sale(house, NOW), by_filter, by_sql) == (expected, expected, expected)
