"""A size limit on uploaded files, enforced while the request body is read.

Django stores an upload whole (in memory or a temporary file) before any view can look
at its size; this handler stops storing a file once it passes the limit, so an oversized
upload never fills the disk, and leaves a note on the request for the view to say so.
"""

from __future__ import annotations

from django.core.files.uploadhandler import FileUploadHandler, SkipFile


class UploadLimit(FileUploadHandler):
    """Skips any file over `limit` bytes; `request.upload_too_large` then names it."""

    def __init__(self, request, limit: int):
        super().__init__(request)
        self.limit = limit
        request.upload_too_large = None

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes:
        if start + len(raw_data) > self.limit:
            self.request.upload_too_large = self.file_name
            raise SkipFile()
        return raw_data

    def file_complete(self, file_size: int) -> None:
        return None  # the next handler (memory or temporary file) keeps the file


def limit_describe(limit: int) -> str:
    """A byte limit as a person reads it: '100 MB'."""
    return f"{limit / 1024 / 1024:,.0f} MB" if limit >= 1024 * 1024 else f"{limit / 1024:,.0f} KB"
