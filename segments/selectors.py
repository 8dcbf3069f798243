"""Reads of segments."""

from django.db.models import QuerySet

from customers.models import Customer

from .models import Segment


def segment_customers(segment: Segment) -> QuerySet[Customer]:
    """The customers in the segment's current version."""
    return Customer.objects.filter(
        segment_memberships__segment=segment, segment_memberships__version=segment.current_version
    )
