"""The CSV importers, driven as a user would: a file in, customers out, rejects by line."""

import csv
import json
from decimal import Decimal

import pytest
from django.core.management import call_command

from customers.importers.result import ImportFailed
from customers.importers.run import import_file
from customers.models import AttributeDefinition, Customer, Event, Order
from tests.conftest import HILLSTROM

pytestmark = pytest.mark.django_db


def write(tmp_path, name, text, encoding="utf-8"):
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def rejects_of(result):
    with open(result.rejects_path, newline="", encoding="utf-8") as fh:
        return {int(row["line"]): row["reason"] for row in csv.DictReader(fh)}


def test_good_rows_are_kept_and_each_bad_row_is_reported_by_line(tmp_path):
    path = write(
        tmp_path,
        "c.csv",
        "external_id,email,name,signup_date,plan\n"
        "a1,a1@example.com,Ann,2024-01-02,gold\n"
        "a2,not-an-email,Bob,2024-01-02,gold\n"
        "a3,a3@example.com,Cy,2024-02-30,silver\n"
        ",a4@example.com,Dee,2024-01-02,gold\n"
        "a5,a5@example.com,Eve,,bronze\n"
        "a6,a6@example.com,Fay,2024-03-01\n",
    )
    result = import_file("customers", path, rejects_path=tmp_path / "rejects.csv")

    assert set(Customer.objects.values_list("external_id", flat=True)) == {"a1", "a5"}
    assert result.imported == 2 and result.rejected == 4
    reasons = rejects_of(result)
    assert set(reasons) == {3, 4, 5, 7}
    assert "email" in reasons[3] and "not-an-email" in reasons[3]
    assert "signup_date" in reasons[4] and "2024-02-30" in reasons[4]
    assert "external_id" in reasons[5] and "blank" in reasons[5]
    assert "fields" in reasons[7]


def test_importing_the_same_file_twice_changes_nothing(tmp_path):
    path = write(tmp_path, "c.csv", "external_id,email,score\nx1,x1@example.com,3\nx2,x2@example.com,4\n")
    first = import_file("customers", path)
    stamps = dict(Customer.objects.values_list("external_id", "updated_at"))
    second = import_file("customers", path)

    assert (first.created, second.created, second.updated, second.unchanged) == (2, 0, 0, 2)
    assert dict(Customer.objects.values_list("external_id", "updated_at")) == stamps


def test_a_changed_row_updates_only_that_customer_and_merges_attributes(tmp_path):
    import_file("customers", write(tmp_path, "a.csv", "external_id,name,tier\nx1,Ann,1\nx2,Bob,2\n"))
    result = import_file("customers", write(tmp_path, "b.csv", "external_id,name,city\nx1,Ann,Paris\nx2,Bob,\n"))

    assert (result.updated, result.unchanged) == (1, 1)
    assert Customer.objects.get(external_id="x1").attributes == {"tier": 1, "city": "Paris"}


def test_attributes_keep_their_types(tmp_path):
    path = write(
        tmp_path,
        "c.csv",
        "external_id,vip,visits,spend,zip,joined,opt_in\n"
        "1,yes,3,10.5,01234,2024-01-01,TRUE\n"
        "2,no,0,0,90210,2023-05-06,FALSE\n",
    )
    import_file("customers", path)
    attrs = Customer.objects.get(external_id="1").attributes
    assert attrs == {"vip": True, "visits": 3, "spend": 10.5, "zip": "01234", "joined": "2024-01-01", "opt_in": True}
    assert dict(AttributeDefinition.objects.values_list("name", "type")) == {
        "vip": "boolean", "visits": "integer", "spend": "number", "zip": "text", "joined": "date", "opt_in": "boolean",
    }


def test_a_value_that_does_not_fit_the_attribute_type_rejects_its_row(tmp_path):
    import_file("customers", write(tmp_path, "a.csv", "external_id,visits\n1,3\n"))
    result = import_file("customers", write(tmp_path, "b.csv", "external_id,visits\n2,many\n3,4\n"))
    assert result.imported == 1
    assert "visits" in rejects_of(result)[2] and "many" in rejects_of(result)[2]


def test_header_without_the_required_column_fails_with_what_it_found(tmp_path):
    path = write(tmp_path, "c.csv", "id,email\n1,a@example.com\n")
    with pytest.raises(ImportFailed, match=r"lacks the required column 'external_id'.*'id'.*--map"):
        import_file("customers", path)
    assert Customer.objects.count() == 0


def test_map_reads_a_field_from_another_column(tmp_path):
    path = write(tmp_path, "c.csv", "customer_no,mail\n7,s@example.com\n")
    import_file("customers", path, mapping={"external_id": "customer_no", "email": "mail"})
    assert Customer.objects.get(external_id="7").email == "s@example.com"


def test_semicolon_delimited_file_is_read(tmp_path):
    path = write(tmp_path, "c.csv", "external_id;email;city\n1;a@example.com;Lyon\n")
    result = import_file("customers", path)
    assert result.delimiter == ";"
    assert Customer.objects.get(external_id="1").attributes == {"city": "Lyon"}


def test_a_file_whose_delimiter_splits_nothing_says_so(tmp_path):
    path = write(tmp_path, "c.csv", "external_id:email\n1:a@example.com\n")
    with pytest.raises(ImportFailed, match="delimiter"):
        import_file("customers", path)


def test_byte_order_mark_is_not_part_of_the_first_column(tmp_path):
    path = write(tmp_path, "c.csv", "\ufeffexternal_id,name\n1,Zoë\n")
    result = import_file("customers", path)
    assert result.encoding == "utf-8-sig"
    assert Customer.objects.get(external_id="1").name == "Zoë"


def test_cp1252_text_is_decoded(tmp_path):
    path = write(tmp_path, "c.csv", "external_id,name\n1,Renée Müller – €\n", encoding="cp1252")
    result = import_file("customers", path)
    assert result.encoding == "cp1252"
    assert Customer.objects.get(external_id="1").name == "Renée Müller – €"


def test_embedded_newlines_stay_in_the_value_and_line_numbers_stay_true(tmp_path):
    path = write(
        tmp_path,
        "c.csv",
        'external_id,name,note\n1,Ann,"two\nlines"\n2,Bob,"three\nmore\nlines"\n3,bad@,x\n4,Cy,\n',
    )
    result = import_file("customers", path, mapping={"email": "name"})
    # name is mapped to email here only to get a validation error on a known line
    assert rejects_of(result).keys() == {2, 4, 7, 8}
    path2 = write(tmp_path, "d.csv", 'external_id,note\n1,"two\nlines"\n2,x\n')
    import_file("customers", path2)
    assert Customer.objects.get(external_id="1").attributes["note"] == "two\nlines"


def test_duplicate_ids_in_the_file_keep_the_first_and_reject_the_rest(tmp_path):
    path = write(tmp_path, "c.csv", "external_id,name\n1,First\n2,Other\n1,Second\n")
    result = import_file("customers", path)
    assert Customer.objects.get(external_id="1").name == "First"
    assert rejects_of(result) == {4: "line 4: duplicate external_id in the file, first on line 2"}


def test_orders_reject_negative_blank_and_malformed_amounts_and_unknown_customers(tmp_path):
    import_file("customers", write(tmp_path, "c.csv", "external_id\nk1\n"))
    path = write(
        tmp_path,
        "o.csv",
        "external_id,customer,amount,currency,ordered_at\n"
        "o1,k1,19.99,eur,2024-05-01T10:00:00Z\n"
        "o2,k1,-5,EUR,2024-05-01\n"
        "o3,k1,,EUR,2024-05-01\n"
        "o4,k1,12abc,EUR,2024-05-01\n"
        "o5,ghost,3,EUR,2024-05-01\n"
        "o6,k1,3,EUR,yesterday\n"
        "o7,k1,3,EURO,2024-05-01\n",
    )
    result = import_file("orders", path)
    order = Order.objects.get()
    assert (order.external_id, order.amount, order.currency) == ("o1", Decimal("19.99"), "EUR")
    reasons = rejects_of(result)
    assert set(reasons) == {3, 4, 5, 6, 7, 8}
    assert "negative" in reasons[3]
    assert "blank" in reasons[4]
    assert "12abc" in reasons[5]
    assert "unknown customer 'ghost'" in reasons[6]
    assert "yesterday" in reasons[7]
    assert "currency" in reasons[8]
    again = import_file("orders", path)
    assert (again.created, again.updated) == (0, 0)


def test_order_extra_columns_become_typed_properties(tmp_path):
    import_file("customers", write(tmp_path, "c.csv", "external_id\nk1\n"))
    import_file(
        "orders",
        write(tmp_path, "o.csv", "external_id,customer,amount,ordered_at,discount_code,items\no1,k1,5,2024-05-01,SAVE10,2\n"),
    )
    assert Order.objects.get().properties == {"discount_code": "SAVE10", "items": 2}


def test_events_import_is_idempotent_without_ids(tmp_path):
    import_file("customers", write(tmp_path, "c.csv", "external_id\nk1\nk2\n"))
    path = write(
        tmp_path,
        "e.csv",
        "customer,kind,occurred_at,page\n"
        "k1,visit,2024-05-01T10:00:00Z,/home\n"
        "k1,visit,2024-05-01T10:00:00Z,/home\n"
        "k2,support_ticket,2024-05-02T09:00:00+02:00,\n"
        "nobody,visit,2024-05-01,\n",
    )
    first = import_file("events", path)
    second = import_file("events", path)
    assert Event.objects.count() == 2
    assert (first.created, second.created, second.updated) == (2, 0, 0)
    assert set(rejects_of(first)) == {3, 5}
    assert Event.objects.get(kind="visit").properties == {"page": "/home"}


def test_command_prints_a_summary_and_json(tmp_path, capsys):
    path = write(tmp_path, "c.csv", "external_id\n1\n2\n")
    call_command("import_customers", str(path))
    assert "2 rows read, 2 imported (2 new" in capsys.readouterr().out
    call_command("import_customers", str(path), "--json")
    payload = json.loads(capsys.readouterr().out)
    assert payload["unchanged"] == 2 and payload["rejected"] == 0


@pytest.mark.skipif(not HILLSTROM.exists(), reason="../shared/datasets/hillstrom.csv is not here")
def test_hillstrom_imports_64000_customers_with_typed_attributes():
    result = import_file("customers", HILLSTROM, id_from_row=True, id_prefix="hillstrom-")
    assert (result.imported, result.rejected) == (64_000, 0)
    first = Customer.objects.get(external_id="hillstrom-2")
    assert first.attributes["recency"] == 10
    assert first.attributes["history"] == pytest.approx(142.44)
    assert first.attributes["mens"] is True and first.attributes["womens"] is False
    assert first.attributes["segment"] == "Womens E-Mail"
    counts = {
        arm: Customer.objects.filter(attributes__segment=arm).count()
        for arm in ("No E-Mail", "Mens E-Mail", "Womens E-Mail")
    }
    assert counts == {"No E-Mail": 21_306, "Mens E-Mail": 21_307, "Womens E-Mail": 21_387}
