"""Strawberry's name converter, remembering each Python name's GraphQL form.

Strawberry converts an argument's Python name to its GraphQL name again each time it converts
a resolver's arguments (``to_camel_case`` per argument per call: a batch field's arguments on
every request), and the answer never changes. Subclassing ``NameConverter`` and passing it
as ``StrawberryConfig(name_converter=...)`` is Strawberry's documented way to change naming.
Source: Strawberry docs, "Schema Configurations" (``name_converter``).
"""

from __future__ import annotations

from strawberry.schema.name_converter import NameConverter


class RememberingNameConverter(NameConverter):
    """``NameConverter`` whose ``apply_naming_config`` (a Python name in, its GraphQL name
    out) is computed once per name."""

    def __init__(self, auto_camel_case: bool = True) -> None:
        super().__init__(auto_camel_case)
        self._names: dict[tuple[str, bool], str] = {}

    def apply_naming_config(self, name: str) -> str:
        key = (name, self.auto_camel_case)
        found = self._names.get(key)
        if found is None:
            found = self._names[key] = super().apply_naming_config(name)
        return found
