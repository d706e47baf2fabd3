"""httpx's private `httpx._multipart` layout: the multipart body classes.

pytest-httpx imports `MultipartStream` from here to compare multipart requests. The
classes live in httprs._content; these are the same objects.
"""

from httprs._content import (
    DataField,
    FileField,
    MultipartStream,
    get_multipart_boundary_from_content_type,
)

__all__ = ["DataField", "FileField", "MultipartStream", "get_multipart_boundary_from_content_type"]
