import pytest
from django.core.management import call_command

from customers.models import Customer, Order

pytestmark = pytest.mark.django_db


def test_load_demo_creates_the_requested_customers_with_planted_truth(capsys):
    call_command("load_demo", "--customers", "1500", "--seed", "3")
    assert "1,500 customers" in capsys.readouterr().out
    assert Customer.objects.count() == 1500
    clusters = {c.attributes["planted_cluster"] for c in Customer.objects.all()}
    assert clusters == {0, 1, 2, 3, 4}
    assert Order.objects.filter(properties__campaign="demo-spring").exists()


def test_load_demo_twice_replaces_rather_than_doubles():
    call_command("load_demo", "--customers", "300")
    call_command("load_demo", "--customers", "300")
    assert Customer.objects.count() == 300


def test_load_demo_if_empty_leaves_an_existing_base_alone(capsys):
    call_command("load_demo", "--customers", "50")
    call_command("load_demo", "--customers", "80", "--if-empty")
    assert "skipped" in capsys.readouterr().out
    assert Customer.objects.count() == 50
