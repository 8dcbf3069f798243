"""The site pages show campaigns' data: reuse their fixtures."""

from tests.campaigns.conftest import campaign, customers, segment  # noqa: F401
