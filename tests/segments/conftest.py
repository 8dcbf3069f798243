import pytest

from customers.models import AttributeDefinition
from tests.factories import CustomerFactory


@pytest.fixture
def base():
    """Eight customers, five in the US and three in France, every other one a vip."""
    AttributeDefinition.objects.create(name="vip", type="boolean")
    for i, country in enumerate(["US"] * 5 + ["FR"] * 3):
        CustomerFactory(external_id=f"p{i}", country=country, attributes={"vip": i % 2 == 0})
