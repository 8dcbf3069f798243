from datetime import timedelta

import factory
from django.contrib.auth.models import Group, User
from django.utils import timezone

from customers.models import Customer, Event, Order


class CustomerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Customer

    external_id = factory.Sequence(lambda n: f"c{n}")
    email = factory.LazyAttribute(lambda o: f"{o.external_id}@example.com")
    name = factory.Faker("name")
    country = "US"
    time_zone = "UTC"
    signup_date = factory.LazyFunction(lambda: (timezone.now() - timedelta(days=400)).date())
    attributes = factory.LazyFunction(dict)


class OrderFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Order

    external_id = factory.Sequence(lambda n: f"o{n}")
    customer = factory.SubFactory(CustomerFactory)
    amount = 50
    currency = "USD"
    ordered_at = factory.LazyFunction(lambda: timezone.now() - timedelta(days=10))


class EventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Event

    customer = factory.SubFactory(CustomerFactory)
    kind = "visit"
    occurred_at = factory.Sequence(lambda n: timezone.now() - timedelta(days=5, seconds=n))


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.PostGenerationMethodCall("set_password", "pw-for-tests-only")

    @factory.post_generation
    def role(self, create, extracted, **kwargs):
        if create and extracted:
            self.groups.add(Group.objects.get_or_create(name=extracted)[0])
        if create:
            self.save()
