"""Keyset pages: every row once, in id order, forwards and back, with no count."""

import pytest

from core.pagination import keyset_page
from customers.models import Customer
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def customers():
    return [c.pk for c in CustomerFactory.create_batch(7)]


def test_walking_forward_visits_every_row_once_in_id_order(customers):
    seen, after, pages = [], None, 0
    while True:
        page = keyset_page(Customer.objects.all(), after=after, size=3)
        seen += [c.pk for c in page]
        pages += 1
        assert page.has_previous == (after is not None)
        if not page.has_next:
            break
        after = page.next_after
    assert seen == sorted(customers) and pages == 3


def test_walking_back_from_the_last_page_gives_the_pages_before_it(customers):
    last = keyset_page(Customer.objects.all(), after=sorted(customers)[5], size=3)
    assert [c.pk for c in last] == [sorted(customers)[6]] and not last.has_next
    back = keyset_page(Customer.objects.all(), before=last.previous_before, size=3)
    assert [c.pk for c in back] == sorted(customers)[3:6]
    assert back.has_next and back.has_previous
    first = keyset_page(Customer.objects.all(), before=back.previous_before, size=3)
    assert [c.pk for c in first] == sorted(customers)[:3] and not first.has_previous


def test_a_filter_is_kept_across_pages(customers):
    Customer.objects.filter(pk__in=sorted(customers)[::2]).update(country="GB")
    page = keyset_page(Customer.objects.filter(country="GB"), after=sorted(customers)[0], size=2)
    assert [c.pk for c in page] == [sorted(customers)[2], sorted(customers)[4]] and page.has_next


@pytest.mark.parametrize("bad", ["x", "-3", "", None, "1e9"])
def test_a_bad_id_reads_as_the_first_page(customers, bad):
    page = keyset_page(Customer.objects.all(), after=bad, size=3)
    assert [c.pk for c in page] == sorted(customers)[:3]


def test_past_the_end_is_an_empty_page_that_leads_back_to_the_start(customers):
    page = keyset_page(Customer.objects.all(), after=max(customers), size=3)
    assert not page.rows and not page.has_next and page.has_previous and page.previous_before is None


def test_last_gives_the_highest_rows_with_the_way_back(customers):
    page = keyset_page(Customer.objects.all(), last=True, size=3)
    assert [c.pk for c in page] == sorted(customers)[4:] and not page.has_next and page.has_previous
    assert page.previous_before == sorted(customers)[4]
    small = keyset_page(Customer.objects.all(), last=True, size=10)
    assert [c.pk for c in small] == sorted(customers) and not small.has_previous


def test_a_key_other_than_the_pk_orders_and_bounds_the_page(customers):
    # Read by a joined row's column (a membership's customer_id): here the customer's own.
    page = keyset_page(Customer.objects.all(), after=sorted(customers)[1], size=2, key="id")
    assert [c.pk for c in page] == sorted(customers)[2:4] and page.next_after == sorted(customers)[3]
