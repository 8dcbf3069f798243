"""The types of a file's extra columns: one odd value does not decide them, and the result says them."""

import json

import pytest
from django.core.management import CommandError, call_command

from customers.importers.run import import_file
from customers.models import AttributeDefinition, Customer
from tests.csvfiles import rejects_of, write as csv_write

pytestmark = pytest.mark.django_db


def write(tmp_path, text, name="c.csv"):
    return csv_write(tmp_path, text, name)


def test_one_odd_value_in_a_yes_no_column_rejects_its_row_and_the_column_stays_boolean(tmp_path):
    rows = "".join(f"{i},{'yes' if i % 2 else 'no'}\n" for i in range(10))
    result = import_file("customers", write(tmp_path, f"external_id,vip\n{rows}99,maybe\n"), rejects_path=tmp_path / "r.csv")

    assert AttributeDefinition.objects.get(name="vip").type == "boolean"
    assert Customer.objects.get(external_id="1").attributes == {"vip": True}
    assert (result.imported, result.rejected) == (10, 1)
    assert rejects_of(result) == {
        12: "line 12: column 'vip' (boolean): 'maybe' is not a boolean (use true/false, yes/no, 1/0)"
    }


def test_the_result_says_which_type_each_new_column_got(tmp_path, capsys):
    import_file("customers", write(tmp_path, "external_id,tier\n1,3\n"))
    path = write(tmp_path, "external_id,tier,vip,joined\n2,4,yes,2024-01-02\n3,5,no,2024-02-03\n", "d.csv")
    call_command("import_customers", str(path), "--json")
    payload = json.loads(capsys.readouterr().out)
    assert payload["new_attributes"] == {"vip": "boolean", "joined": "date"}
    assert payload["attributes"] == {"tier": "integer", "vip": "boolean", "joined": "date"}

    call_command("import_customers", str(write(tmp_path, "external_id,spend\n2,1.5\n", "e.csv")))
    assert "new columns typed spend (number)" in capsys.readouterr().out


def test_asking_another_type_for_an_already_typed_column_is_an_error(tmp_path):
    import_file("customers", write(tmp_path, "external_id,tier\n1,3\n"))
    again = write(tmp_path, "external_id,tier\n2,gold\n", "d.csv")
    with pytest.raises(CommandError, match="column 'tier' is already typed integer: --type tier=text cannot change it"):
        call_command("import_customers", str(again), "--type", "tier=text")
    assert not Customer.objects.filter(external_id="2").exists()
    call_command("import_customers", str(write(tmp_path, "external_id,tier\n3,4\n", "e.csv")), "--type", "tier=integer")
    assert Customer.objects.get(external_id="3").attributes == {"tier": 4}


def test_a_column_of_codes_with_leading_zeros_stays_text(tmp_path):
    rows = "".join(f"{i},{90210 + i}\n" for i in range(20))
    import_file("customers", write(tmp_path, f"external_id,zip\n{rows}99,01234\n"))
    assert AttributeDefinition.objects.get(name="zip").type == "text"
    assert Customer.objects.get(external_id="99").attributes == {"zip": "01234"}
