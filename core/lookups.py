"""Finding a row the way people and scripts name it: by name, or by its number."""

from django.db.models import Model, QuerySet


def by_name_or_id(queryset: QuerySet, name_or_id: str | int, what: str) -> Model:
    """By name first, then by id: a name made of digits still finds its own row.

    Raises the model's DoesNotExist with a message a command can print as it is."""
    text = str(name_or_id).strip()
    found = queryset.filter(name=text).first()
    if found is None and text.isdigit():
        found = queryset.filter(id=int(text)).first()
    if found is None:
        raise queryset.model.DoesNotExist(f"no {what} named or numbered {text!r}")
    return found
