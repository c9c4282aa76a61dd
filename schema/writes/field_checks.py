"""Checking mutation input field by field, collecting every problem into one ValidationError.

A UI wants all of a form's errors at once, each against its field, so checks record a
``FieldError`` and carry on instead of raising; the resolver returns ``ValidationError`` when
any were recorded, before it touches the database. Limits follow the columns where the schema
declares them (``String(n)``) and are stated here where it does not (``Text``).
"""

from __future__ import annotations

import re
from typing import Any

import strawberry

from db import models
from schema.errors import BadUserInput
from schema.relay.node import parse_id
from schema.validation import encodable, max_length_of, text_argument
from schema.writes.results import FieldError, ValidationError

TITLE_MAX = max_length_of(models.Post.__table__.c.title)
CONTENT_MAX = 100_000
BODY_MAX = 10_000
NAME_MAX = max_length_of(models.User.__table__.c.name)
BIO_MAX = 2_000
EMAIL_MAX = max_length_of(models.User.__table__.c.email)
TAG_NAME_MAX = max_length_of(models.Tag.__table__.c.name)
TAGS_PER_POST = 10
PASSWORD_MIN = 8
#: Argon2 takes any length, but hashing a megabyte "password" is a cheap way to burn CPU.
PASSWORD_MAX = 1_000
#: Deliberately loose (one @, a dot in the domain, no spaces): the real check of an address is
#: mail reaching it; a stricter pattern mostly rejects valid addresses.
EMAIL_PATTERN = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


def normalise_email(email: str) -> str:
    """Emails are stored trimmed and lower-case (so the UNIQUE constraint ignores case), and
    every lookup normalises the same way (``FieldChecks.email`` for writes)."""
    return email.strip().lower()


def normalise_tag(name: str, argument: str = "name") -> str:
    """A tag name as stored: trimmed and lower-case (``FieldChecks.tag_names`` for writes).
    Raises ``BadUserInput`` for text that cannot be a tag name (too long, NUL)."""
    return text_argument(name.strip().lower(), argument, TAG_NAME_MAX)


class FieldChecks:
    """Records ``FieldError``s for one input; ``prefix`` places a nested input's fields
    (``posts.3.``). Nested checkers share their parent's error list."""

    def __init__(self, prefix: str = "", errors: list[FieldError] | None = None) -> None:
        self.prefix = prefix
        self.errors: list[FieldError] = [] if errors is None else errors

    def nested(self, field: str | int) -> FieldChecks:
        """A checker for the input nested at ``field`` (a name or a list index)."""
        return FieldChecks(f"{self.prefix}{field}.", self.errors)

    def add(self, field: str | int, message: str) -> None:
        self.errors.append(FieldError(field=f"{self.prefix}{field}", message=message))

    def result(self) -> ValidationError | None:
        """A ``ValidationError`` of everything recorded, or ``None`` if the input is valid."""
        return ValidationError.of(self.errors) if self.errors else None

    def text(
        self,
        field: str | int,
        value: str | None,
        *,
        max_length: int,
        min_length: int = 0,
        strip: bool = True,
        lower: bool = False,
    ) -> str:
        """``value`` as it will be stored (trimmed if ``strip``, lower-cased if ``lower``),
        recording an error when it is null, shorter than ``min_length``, longer than
        ``max_length`` or holds characters no database stores.

        Lengths are checked after normalising: lower-casing can lengthen text ("İ" becomes
        two code points), and the column holds the normalised form.
        """
        if value is None:
            self.add(field, "Must not be null.")
            return ""
        if strip:
            value = value.strip()
        if lower:
            value = value.lower()
        if len(value) < min_length:
            self.add(
                field,
                "Must not be empty."
                if min_length == 1
                else f"Use at least {min_length} characters.",
            )
        elif len(value) > max_length:
            self.add(field, f"Use at most {max_length} characters (this is {len(value)}).")
        elif "\x00" in value or not encodable(value):
            self.add(field, "Contains a character that cannot be stored (NUL or a lone surrogate).")
        return value

    def id(self, field: str | int, value: str, type_name: str) -> int:
        """The primary key in ``value`` (a global ID of ``type_name`` or a numeric id),
        recording an error (and returning 0) when it is malformed or of another type."""
        try:
            return parse_id(value, type_name, f"{self.prefix}{field}")
        except BadUserInput as exc:
            self.add(field, str(exc))
            return 0

    def email(self, field: str, value: str) -> str:
        """``value`` normalised (trimmed, lower-case), recording an error unless it looks like
        an email address."""
        before = len(self.errors)
        value = self.text(field, value, max_length=EMAIL_MAX, min_length=1, lower=True)
        if len(self.errors) == before and not EMAIL_PATTERN.fullmatch(value):
            self.add(field, "Is not an email address.")
        return value

    def password(self, field: str, value: str) -> str:
        """``value`` as given (never trimmed: spaces may be part of it)."""
        return self.text(
            field, value, min_length=PASSWORD_MIN, max_length=PASSWORD_MAX, strip=False
        )

    def tag_names(self, field: str, names: list[str]) -> list[str]:
        """The names normalised (trimmed, lower-case) in the given order, recording an error
        for more than ``TAGS_PER_POST``, an invalid name, or a duplicate after normalising."""
        if len(names) > TAGS_PER_POST:
            self.add(field, f"A post has at most {TAGS_PER_POST} tags (this is {len(names)}).")
            return []
        seen: dict[str, int] = {}
        normalised = []
        for index, name in enumerate(names):
            tag = self.text(
                f"{field}.{index}", name, min_length=1, max_length=TAG_NAME_MAX, lower=True
            )
            if tag in seen:
                self.add(f"{field}.{index}", f"Repeats {field}.{seen[tag]} ({tag!r}).")
            seen.setdefault(tag, index)
            normalised.append(tag)
        return list(dict.fromkeys(normalised))


def given(value: Any) -> bool:
    """True when an optional input field was sent (``strawberry.UNSET`` means absent)."""
    return value is not strawberry.UNSET
