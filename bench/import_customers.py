"""Importer throughput against raw COPY of the same file, in the same run.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/offerlab_bench \
        .venv/bin/python bench/import_customers.py --customers 1000000

Writes a synthetic customers CSV, then (1) imports it with `import_customers`'s code path
(parse, validate, COPY to staging, upsert) into an empty customers table, and (2) COPYs the
very same file into a bare table with psycopg, no validation. Prints both rates and the
ratio, and the importer's peak memory (memory must stay flat as the file grows).
"""

import argparse
import csv
import os
import random
import resource
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
from customers.importers.run import import_file  # noqa: E402
from customers.models import AttributeDefinition, Customer  # noqa: E402


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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=1_000_000)
    args = parser.parse_args()
    if not is_postgres():
        sys.exit("set DATABASE_URL to a PostgreSQL database: the comparison is against COPY")
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "customers.csv"
        write_csv(path, args.customers)
        size_mb = path.stat().st_size / 1e6
        with connection.cursor() as cursor:
            cursor.execute(f"TRUNCATE {Customer._meta.db_table} CASCADE")
        AttributeDefinition.objects.filter(name__in=["plan", "visits", "vip"]).delete()
        before = peak_mb()
        started = time.perf_counter()
        result = import_file("customers", path, rejects_path=Path(tmp) / "rejects.csv")
        importer_s = time.perf_counter() - started
        importer_peak = peak_mb()
        assert result.imported == args.customers, result.summary()

        with connection.cursor() as cursor:
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
            raw_s = time.perf_counter() - started
            cursor.execute("DROP TABLE bench_raw_customers")
            # The same final write with no parsing at all: typed rows straight into a table
            # shaped and indexed like customers_customer.
            cursor.execute("DROP TABLE IF EXISTS bench_like_customers")
            cursor.execute(f"CREATE TABLE bench_like_customers (LIKE {Customer._meta.db_table} INCLUDING ALL)")
            rows = cursor.cursor.execute(
                f"SELECT id, external_id, email, name, country, time_zone, signup_date, "
                f"attributes::text, created_at, updated_at FROM {Customer._meta.db_table}"
            ).fetchall()
            started = time.perf_counter()
            with cursor.cursor.copy(
                "COPY bench_like_customers (id, external_id, email, name, country, time_zone, signup_date, "
                "attributes, created_at, updated_at) FROM STDIN"
            ) as copy:
                for row in rows:
                    copy.write_row(row)
            like_s = time.perf_counter() - started
            cursor.execute("DROP TABLE bench_like_customers")

    n = args.customers
    print(f"file: {n:,} customers, {size_mb:.0f} MB")
    print(f"importer (parse + validate + COPY to staging + upsert): {importer_s:6.2f} s  {n / importer_s:>10,.0f} rows/s")
    print(f"raw COPY of the same file, no validation:              {raw_s:6.2f} s  {n / raw_s:>10,.0f} rows/s")
    print(f"raw COPY of typed rows into a table indexed like customers: {like_s:6.2f} s  {n / like_s:>10,.0f} rows/s")
    print(f"ratio importer / raw COPY of the file:   {importer_s / raw_s:.2f}x")
    print(f"ratio importer / raw COPY, same indexes: {importer_s / like_s:.2f}x")
    print(f"peak memory: {before:.0f} MB before, {importer_peak:.0f} MB after the import")


if __name__ == "__main__":
    main()
