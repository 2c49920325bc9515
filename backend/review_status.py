"""Which review statuses a run trains on and an export writes: one named filter, defined once.

Default `not_rejected`: everything but rejected images (a rejected image is known-bad data);
`accepted` trains only on reviewed work; `all`, or a single status name, selects exactly that.
"""
from __future__ import annotations

from sqlalchemy import ColumnElement

from backend.errors import InvalidInput
from backend.models import Image, ImageStatus

DEFAULT = "not_rejected"
FILTERS: dict[str, tuple[ImageStatus, ...]] = {
    "not_rejected": (ImageStatus.unlabeled, ImageStatus.in_review, ImageStatus.accepted),
    "accepted": (ImageStatus.accepted,),
    "all": tuple(ImageStatus),
    **{s.value: (s,) for s in ImageStatus if s != ImageStatus.accepted},
}
NAMES = tuple(FILTERS)


def statuses(name: str | None, field: str = "image_status") -> tuple[ImageStatus, ...]:
    """The statuses a filter name selects (None: the default); 422 naming the field otherwise."""
    name = DEFAULT if name is None else name
    if name not in FILTERS:
        raise InvalidInput(f"{field}: {name!r} is not one of {', '.join(NAMES)}")
    return FILTERS[name]


def condition(name: str | None, field: str = "image_status") -> ColumnElement[bool]:
    """The SQL condition on Image.status for a filter name."""
    return Image.status.in_(statuses(name, field))
