"""core.uploads: an upload past the limit is not stored, and the request says which file it was."""

import pytest
from django.core.files.uploadhandler import SkipFile
from django.test import RequestFactory

from core.uploads import UploadLimit, limit_describe


def test_a_file_past_the_limit_is_skipped_and_named_on_the_request():
    request = RequestFactory().post("/")
    handler = UploadLimit(request, limit=10)
    handler.new_file("file", "big.csv", "text/csv", 20)
    assert handler.receive_data_chunk(b"12345", 0) == b"12345"
    with pytest.raises(SkipFile):
        handler.receive_data_chunk(b"678901", 5)
    assert request.upload_too_large == "big.csv"


def test_limits_read_as_people_write_them():
    assert (limit_describe(100 * 1024 * 1024), limit_describe(512 * 1024)) == ("100 MB", "512 KB")
