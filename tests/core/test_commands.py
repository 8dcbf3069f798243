import io
import json
from dataclasses import asdict, dataclass

from core.commands import result_print


@dataclass
class Answer:
    rows: int

    def summary(self) -> str:
        return f"{self.rows} rows"

    def as_dict(self) -> dict:
        return asdict(self)


def test_a_result_prints_as_its_summary_line_or_as_json():
    line, machine = io.StringIO(), io.StringIO()
    result_print(line, Answer(3), as_json=False)
    result_print(machine, Answer(3), as_json=True)
    assert line.getvalue() == "3 rows"
    assert json.loads(machine.getvalue()) == {"rows": 3}
