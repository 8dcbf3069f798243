"""Importer throughput against raw COPY of the same file, in the same run.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/offerlab_bench \
        .venv/bin/python bench/import_customers.py --customers 1000000

Writes a synthetic customers CSV, then imports it with `import_customers`'s code path
into an empty customers table twice (a first load: COPYed straight into the table, see
customers/importers/direct.py): with the secondary indexes kept, and with the importer's
own choice (built after, see customers/importers/indexes.py); then once more into the
full table (staged; nothing changes). Beside them in the same run: the typed rows the
importer wrote, the same columns in the same form, COPYed into a table shaped and indexed
like customers (indexes kept, then built after), and the CSV file COPYed into a bare
table. Prints times, rates and ratios (the goal's: each importer load against the raw
COPY that ends with the same index work), and the importer's peak memory.

On a busy machine `--repeat 3` interleaves three rounds and prints medians.
`--defer-sizes 1000,5000,20000` times only first loads of those sizes, indexes built
after against kept: the choice indexes.first_load_plan makes for an empty table.
"""

import argparse
import csv
import os
import random
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("SECRET_KEY", "bench")

import django  # noqa: E402

django.setup()

from django.db import connection  # noqa: E402

from core.db import is_postgres  # noqa: E402
from customers.importers.indexes import BUILD_MEMORY, secondary_indexes, unique_constraints  # noqa: E402
from customers.importers.run import import_file  # noqa: E402
from customers.models import AttributeDefinition, Customer  # noqa: E402


# The columns the importer COPYs into customers_customer (customers/importers/direct.py).
TYPED_COLUMNS = [
    "external_id", "email", "name", "country", "time_zone", "signup_date", "attributes", "created_at", "updated_at",
]


def write_csv(path: Path, n: int) -> None:
    rng = random.Random(1)
    with open(path, "w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["external_id", "email", "name", "country", "signup_date", "plan", "visits", "vip"])
        for i in range(n):
            out.writerow([
                f"b{i}", f"b{i}@example.com", f"Customer {i}", rng.choice(["US", "FR", "DE"]),
                f"20{rng.randint(18, 25)}-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}",
                rng.choice(["free", "pro", "team"]), rng.randint(0, 300), rng.choice(["yes", "no"]),
            ])


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def importer_run(path: Path, tmp: str, defer_indexes: bool | None) -> tuple[float, object]:
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {Customer._meta.db_table} CASCADE")
    AttributeDefinition.objects.filter(name__in=["plan", "visits", "vip"]).delete()
    started = time.perf_counter()
    result = import_file("customers", path, rejects_path=Path(tmp) / "rejects.csv", defer_indexes=defer_indexes)
    return time.perf_counter() - started, result


def raw_copy_typed(cursor, rows: list, *, indexes_after: bool) -> float:
    """COPY the typed rows into a table shaped like customers_customer, its indexes kept
    (the goal's baseline) or built after the COPY (the same choice the importer makes)."""
    table = Customer._meta.db_table
    cursor.execute("DROP TABLE IF EXISTS bench_like_customers")
    cursor.execute(f"CREATE TABLE bench_like_customers (LIKE {table} INCLUDING ALL)")
    builds, constraints = [], []
    if indexes_after:
        builds = secondary_indexes("bench_like_customers")
        constraints = unique_constraints("bench_like_customers")
        for name, _ in builds:
            cursor.execute(f'DROP INDEX "{name}"')
        for name, _ in constraints:
            cursor.execute(f'ALTER TABLE bench_like_customers DROP CONSTRAINT "{name}"')
    started = time.perf_counter()
    with cursor.cursor.copy(f"COPY bench_like_customers ({', '.join(TYPED_COLUMNS)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)
    cursor.execute(f"SET maintenance_work_mem = '{BUILD_MEMORY}'")
    for name, definition in constraints:
        cursor.execute(f'ALTER TABLE bench_like_customers ADD CONSTRAINT "{name}" {definition}')
    for _, definition in builds:
        cursor.execute(definition)
    seconds = time.perf_counter() - started
    cursor.execute("RESET maintenance_work_mem")
    cursor.execute("DROP TABLE bench_like_customers")
    return seconds


def raw_copy_csv(cursor, path: Path) -> float:
    cursor.execute("DROP TABLE IF EXISTS bench_raw_customers")
    cursor.execute(
        "CREATE UNLOGGED TABLE bench_raw_customers (external_id text, email text, name text, "
        "country text, signup_date date, plan text, visits int, vip text)"
    )
    started = time.perf_counter()
    with open(path, "rb") as fh, cursor.cursor.copy(
        "COPY bench_raw_customers FROM STDIN WITH (FORMAT csv, HEADER true)"
    ) as copy:
        while chunk := fh.read(1 << 20):
            copy.write(chunk)
    seconds = time.perf_counter() - started
    cursor.execute("DROP TABLE bench_raw_customers")
    return seconds


def typed_rows(cursor) -> list:
    """The rows the importer wrote, as it wrote them: the same columns (the id left to the
    table's identity), the date typed, the attributes as JSON text and the two timestamps
    as text, the form the importer sends them in (see customers/importers/direct.py)."""
    return cursor.cursor.execute(
        f"SELECT {', '.join(TYPED_COLUMNS[:-3])}, attributes::text, created_at::text, updated_at::text "
        f"FROM {Customer._meta.db_table} ORDER BY id"
    ).fetchall()


def defer_compare(sizes: list[int], repeat: int) -> None:
    """A first load into the empty table at small sizes: indexes built after, or kept."""
    print("first load into the empty table: indexes built after vs kept (median of", repeat, "each)")
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            path = Path(tmp) / f"customers-{n}.csv"
            write_csv(path, n)
            times: dict[bool, list[float]] = {True: [], False: []}
            for _ in range(repeat):
                for defer in (True, False):
                    seconds, result = importer_run(path, tmp, defer_indexes=defer)
                    assert result.imported == n, result.summary()
                    times[defer].append(seconds)
            after, kept = statistics.median(times[True]), statistics.median(times[False])
            print(f"{n:>9,} rows: built after {after:7.3f} s, kept {kept:7.3f} s, after/kept {after / kept:5.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument(
        "--repeat", type=int, default=1,
        help="rounds of the four timed loads, interleaved; each line prints its median (for a busy machine)",
    )
    parser.add_argument(
        "--defer-sizes", default="",
        help="comma-separated file sizes: time only a first load with the indexes built after vs kept",
    )
    args = parser.parse_args()
    if not is_postgres():
        sys.exit("set DATABASE_URL to a PostgreSQL database: the comparison is against COPY")
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    if args.defer_sizes:
        defer_compare([int(size) for size in args.defer_sizes.split(",")], args.repeat)
        return
    n = args.customers
    times: dict[str, list[float]] = {"after": [], "kept": [], "raw kept": [], "raw after": []}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "customers.csv"
        write_csv(path, n)
        size_mb = path.stat().st_size / 1e6
        before = peak_mb()
        importer_peak = 0.0
        for _ in range(args.repeat):
            # Indexes kept first, then the importer's own choice, whose table the baselines read.
            seconds, result = importer_run(path, tmp, defer_indexes=False)
            assert result.imported == n, result.summary()
            times["kept"].append(seconds)
            seconds, result = importer_run(path, tmp, defer_indexes=None)
            assert result.imported == n, result.summary()
            times["after"].append(seconds)
            # Before the baselines first hold the typed rows in this process.
            importer_peak = importer_peak or peak_mb()
            with connection.cursor() as cursor:
                rows = typed_rows(cursor)
                times["raw kept"].append(raw_copy_typed(cursor, rows, indexes_after=False))
                times["raw after"].append(raw_copy_typed(cursor, rows, indexes_after=True))
                del rows
        # Importing the same file again: every row is looked at, none is written.
        started = time.perf_counter()
        again = import_file("customers", path, rejects_path=Path(tmp) / "rejects.csv")
        again_s = time.perf_counter() - started
        assert (again.created, again.updated, again.unchanged) == (0, 0, n), again.summary()
        with connection.cursor() as cursor:
            raw_s = raw_copy_csv(cursor, path)

    median = {label: statistics.median(values) for label, values in times.items()}
    like_s, like_after_s = median["raw kept"], median["raw after"]

    def line(label: str, seconds: float, base: float | None = None) -> str:
        ratio = f"{seconds / base:6.2f}x" if base else ""
        return f"{label:<62} {seconds:7.2f} s {n / seconds:>10,.0f} rows/s  {ratio}"

    rounds = f", median of {args.repeat} interleaved rounds" if args.repeat > 1 else ""
    print(f"file: {n:,} customers, {size_mb:.0f} MB{rounds}; ratios against the raw COPY of typed rows, indexes kept")
    print(line("importer into the empty table (its own choice: indexes after)", median["after"], like_s))
    print(line("importer into the empty table, indexes kept", median["kept"], like_s))
    print(line("importer, the same file again (all unchanged)", again_s, like_s))
    print(line("raw COPY of typed rows, table indexed like customers", like_s, like_s))
    print(line("raw COPY of typed rows, the same indexes built after", like_after_s, like_s))
    print(line("raw COPY of the CSV file into a bare table, no validation", raw_s))
    # The goal's ratios, each against the raw COPY that ends with the same indexes built
    # the same way: same rows, same columns, same index work.
    print(f"importer / raw COPY, indexes built after in both: {median['after'] / like_after_s:.2f}x")
    print(f"importer / raw COPY, indexes kept in both: {median['kept'] / like_s:.2f}x")
    print(f"peak memory: {before:.0f} MB before, {importer_peak:.0f} MB after the import")


if __name__ == "__main__":
    main()
