"""CSV (and JSON batch) imports of customers, orders and events.

One path for every kind: parse and validate each record in Python (streaming, so memory
stays flat), load the good ones into a temporary staging table (COPY on PostgreSQL,
batched inserts on SQLite), then let SQL do the set-based work: duplicate ids inside the
file, unknown customers, and one INSERT ... ON CONFLICT upsert that leaves unchanged rows
alone, so importing the same file twice changes nothing. A load of customers into an empty
table skips the staging table: nothing in it can collide (`direct`).

- `specs`: what each kind of file holds, and the value checks of its columns;
- `columns`: which file column feeds which field, and the types of the extra columns;
- `rows`: the hot loop that turns records into staging tuples or rejects;
- `staging`: the SQL over the staging table (duplicates, unknown customers, the upsert);
- `direct`: a first load into an empty table, COPYed straight into it (no staging);
- `indexes`: the secondary indexes built after a large first load;
- `run`: the entry points, `import_file` and `import_records`;
- `result`: what an import answers, and the error that refuses one.
"""
