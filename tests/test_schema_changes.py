"""Schema changes are named in CHANGELOG.md: an incompatible change to ``schema.graphql``
against the last released SDL (``releases/<version>.graphql``, the highest version) fails
this test until the changelog's "Unreleased" section names it, with its reason, under a
"Breaking" heading.

The changes are graphql-core's ``find_breaking_changes`` (the same rules as graphql-js's
``findBreakingChanges``, which GraphQL Inspector and Apollo's schema checks build on): removed
types and fields, changed field types, removed enum values or union members, new required
arguments and input fields. Each must be named by a schema coordinate its description names
(``NotFound.id``, or a type's name).
Source: graphql-core ``graphql.utilities.find_breaking_changes``; "Keep a Changelog" 1.1.
"""

from __future__ import annotations

import re
from pathlib import Path

from graphql import GraphQLSchema, build_schema, find_breaking_changes

from server import SCHEMA_FILE

ROOT = Path(__file__).resolve().parent.parent
CHANGELOG = ROOT / "CHANGELOG.md"
RELEASES = ROOT / "releases"


def _version(path: Path) -> tuple[int, ...]:
    return tuple(int(part) for part in path.stem.split("."))


def last_released_sdl() -> Path:
    """The SDL of the newest release in ``releases/`` (files named ``<major.minor.patch>``)."""
    return max(RELEASES.glob("*.graphql"), key=_version)


def unreleased_breaking_section(changelog: str) -> str:
    """The text of the changelog's ``## Unreleased`` section under its ``### Breaking``
    heading ('' when either is missing)."""
    unreleased = re.search(r"^## Unreleased\b.*?(?=^## |\Z)", changelog, re.M | re.S)
    if unreleased is None:
        return ""
    breaking = re.search(r"^### Breaking\b.*?(?=^### |\Z)", unreleased.group(0), re.M | re.S)
    return breaking.group(0) if breaking else ""


def coordinates(description: str, schema: GraphQLSchema) -> set[str]:
    """The schema coordinates a change's description names: ``Type.field`` (or
    ``Type.field.argument``) words, and the names of ``schema``'s types."""
    words = re.findall(r"[A-Za-z_]\w*(?:\.\w+)*", description)
    return {w for w in words if "." in w or w in schema.type_map}


def test_every_breaking_change_since_the_last_release_is_in_the_changelog() -> None:
    released = build_schema(last_released_sdl().read_text())
    current = build_schema(SCHEMA_FILE.read_text())
    section = unreleased_breaking_section(CHANGELOG.read_text())
    missing = [
        change.description
        for change in find_breaking_changes(released, current)
        if not any(f"`{name}`" in section for name in coordinates(change.description, released))
    ]
    assert not missing, (
        "schema.graphql breaks clients of the last release; name each change (in backticks) "
        "with its reason under '## Unreleased' / '### Breaking' in CHANGELOG.md: "
        + "; ".join(missing)
    )


def test_the_check_sees_a_removed_field() -> None:
    # The rule above cannot pass vacuously: a removed field is a breaking change it names.
    released = build_schema("type Query { a: Int b: Int }")
    [change] = find_breaking_changes(released, build_schema("type Query { a: Int }"))
    assert coordinates(change.description, released) == {"Query.b"}
    assert unreleased_breaking_section("## Unreleased\n### Breaking\n- `Query.b`\n## 0.1.0\n")
    assert not unreleased_breaking_section("## Unreleased\n### Added\n- `Query.b`\n")
