"""VAR_SAMP and COVAR_SAMP for SQLite, as PostgreSQL computes them: one pass, numerically
stable (Welford's update, not sum and sum of squares), NULL below two rows.

Django registers a VAR_SAMP on SQLite that fails on a single row and has no COVAR_SAMP;
the report's SQL needs both to read the same on either database."""

from __future__ import annotations


class CovarSamp:
    def __init__(self) -> None:
        self.n, self.mean_x, self.mean_y, self.c = 0, 0.0, 0.0, 0.0

    def step(self, x, y) -> None:
        if x is None or y is None:
            return
        self.n += 1
        dx = float(x) - self.mean_x
        self.mean_x += dx / self.n
        self.mean_y += (float(y) - self.mean_y) / self.n
        self.c += dx * (float(y) - self.mean_y)

    def finalize(self) -> float | None:
        return self.c / (self.n - 1) if self.n > 1 else None


class VarSamp(CovarSamp):
    def step(self, x) -> None:  # type: ignore[override]
        super().step(x, x)


def sqlite_register(sender, connection, **kwargs) -> None:
    if connection.vendor == "sqlite":  # the signal fires for every backend
        connection.connection.create_aggregate("VAR_SAMP", 1, VarSamp)
        connection.connection.create_aggregate("COVAR_SAMP", 2, CovarSamp)
