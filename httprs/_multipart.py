"""httpx's private `httpx._multipart` layout: the multipart body classes.

pytest-httpx imports `MultipartStream` from here to compare multipart requests. The
classes live in httprs._content; these are the same objects.
"""

# `mock.patch("httpx._multipart.os.urandom", ...)` fixes the boundary in test suites (the
# boundary is drawn from os.urandom when a MultipartStream is made).
import os  # noqa: F401

from httprs._content import (  # noqa: F401  (httpx's private helpers, imported by code)
    DataField,
    FileField,
    MultipartStream,
    _format_form_param,
    _guess_content_type,
    get_multipart_boundary_from_content_type,
)

__all__ = ["DataField", "FileField", "MultipartStream", "get_multipart_boundary_from_content_type"]
