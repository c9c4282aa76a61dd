"""Every ```graphql block of README.md, run verbatim against the real app, on both databases.

The convention (README.md says it to readers too, under "Errors"):

* Each fenced ```graphql block is an example. They run in README order, as a reader would paste
  them, over HTTP (httpx against the ASGI app) into one database seeded with ``WRITE_SEED``.
  A block holding several named operations runs each of them in turn (by ``operationName``).
* An HTML comment on the line before a block (blank lines between are allowed) says how it
  runs, ``<!-- example: as=WHO expect=WHAT status=CODE -->``, every key optional:

  - ``as``: ``anonymous`` (the default), ``member`` (user 2), ``admin`` (user 1),
    ``bad-token`` (a token Inkwell did not sign), or ``$path``: a token an earlier example
    returned (``as=$login.token``).
  - ``expect``: by default the example succeeds: no ``errors``, and each mutation field's
    ``__typename`` is its payload (``...Payload``, not a ``MutationError``). Otherwise a
    comma-separated list of ``error:CODE`` (the codes of ``errors`` are exactly these
    ``extensions.code``) and ``field:Type`` (the mutation field at that response key resolves
    to ``Type``; unlisted fields must still succeed unless an ``error:`` is expected).
  - ``status``: the HTTP status (default 200). A 401 must carry
    ``WWW-Authenticate: Bearer error="invalid_token"``.
  - the word ``sdl`` alone: the block is a schema excerpt. It is not run; it must parse as
    SDL, and each type in it must be served exactly so (same fields, field types, interfaces).

* A ```json block right after a ```graphql block (only blank lines between) holds its
  variables. A string ``"$path"`` in them stands for a value an earlier example returned:
  ``path`` is response keys, dot-separated, into the ``data`` of the examples so far (a later
  root field replaces an earlier one of the same key), so ``"$createPost.post.id"`` is the id
  of the post the last ``createPost`` example made.
* A mutation example run signed in is first run signed out too (which changes nothing): each
  field must then answer its ``__typename`` and a ``message``, so that a reader who pastes it
  without a token learns why nothing happened instead of reading ``{}``.
* A subscription example subscribes over a WebSocket to the same app (graphql-transport-ws,
  signed in as ``as`` says); the test then makes, as the admin, the change the subscription
  follows (``TRIGGERS``, given the subscription's arguments) and expects an event, without
  errors.
"""

from __future__ import annotations

import asyncio
import json
import re
import textwrap
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from graphql import (
    DocumentNode,
    FieldNode,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLSchema,
    GraphQLSyntaxError,
    InterfaceTypeDefinitionNode,
    ObjectTypeDefinitionNode,
    OperationDefinitionNode,
    OperationType,
    TypeDefinitionNode,
    build_client_schema,
    get_introspection_query,
    parse,
    print_ast,
    value_from_ast_untyped,
)

from tests.conftest import ADMIN_ID, OWNER, App, bearer

README = Path(__file__).resolve().parent.parent / "README.md"
FENCE = re.compile(r"^\s*```(\S*)\s*$")
ANNOTATION = re.compile(r"^\s*<!--\s*example:(.*?)-->\s*$")
OPTIONS = {"as", "expect", "status"}
USERS = {"member": OWNER, "admin": ADMIN_ID}
#: Seconds to wait for a WebSocket message or a subscription to register.
WAIT = 20.0


@dataclass
class Example:
    """One ```graphql block and what the README says about running it."""

    line: int  # README line of the opening fence, counted from 1
    text: str
    sdl: bool = False
    viewer: str = "anonymous"
    status: int = 200
    codes: set[str] = field(default_factory=set)
    typenames: dict[str, str] = field(default_factory=dict)
    variables: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"README.md:{self.line}"


def read_examples(markdown: str) -> list[Example]:
    """The ```graphql blocks of ``markdown``, in order, with their annotations and variables.
    Raises ``ValueError`` for an annotation that is malformed or not above a graphql block."""
    lines = markdown.splitlines()
    blocks: list[tuple[int, int, str, str]] = []  # opening line, closing line, language, text
    i = 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if opening is None:
            i += 1
            continue
        end = next(j for j in range(i + 1, len(lines)) if lines[j].strip() == "```")
        blocks.append((i, end, opening.group(1), textwrap.dedent("\n".join(lines[i + 1 : end]))))
        i = end + 1
    examples: list[Example] = []
    annotations_used: set[int] = set()
    for index, (start, end, language, text) in enumerate(blocks):
        if language != "graphql":
            continue
        example = Example(line=start + 1, text=text)
        above = start - 1
        while above >= 0 and not lines[above].strip():
            above -= 1
        if above >= 0 and (annotation := ANNOTATION.match(lines[above])):
            annotations_used.add(above)
            _apply_options(example, annotation.group(1).split())
        following = blocks[index + 1] if index + 1 < len(blocks) else None
        if following and following[2] == "json":
            between = lines[end + 1 : following[0]]
            if not any(line.strip() for line in between):
                example.variables = json.loads(following[3])
        examples.append(example)
    for number, line in enumerate(lines):
        if ANNOTATION.match(line) and number not in annotations_used:
            raise ValueError(f"README.md:{number + 1}: an example comment above no graphql block")
    return examples


def _apply_options(example: Example, words: list[str]) -> None:
    for word in words:
        if word == "sdl":
            example.sdl = True
            continue
        key, equals, value = word.partition("=")
        if key not in OPTIONS or not equals or not value:
            raise ValueError(f"{example}: unknown example option {word!r}")
        if key == "as":
            example.viewer = value
        elif key == "status":
            example.status = int(value)
        else:
            for item in value.split(","):
                kind, _, name = item.partition(":")
                if kind == "error":
                    example.codes.add(name)
                else:
                    example.typenames[kind] = name


def _operations(document: DocumentNode) -> list[OperationDefinitionNode]:
    return [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]


def _root_fields(operation: OperationDefinitionNode) -> list[FieldNode]:
    return [s for s in operation.selection_set.selections if isinstance(s, FieldNode)]


def _key(node: FieldNode) -> str:
    return node.alias.value if node.alias else node.name.value


class Socket:
    """A graphql-transport-ws client on an ASGI app's WebSocket, in the test's event loop."""

    def __init__(self) -> None:
        self.to_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.from_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def send(self, message: dict[str, Any]) -> None:
        await self.to_app.put({"type": "websocket.receive", "text": json.dumps(message)})

    async def receive(self) -> dict[str, Any]:
        """The next protocol message (pings answered and skipped)."""
        while True:
            event = await asyncio.wait_for(self.from_app.get(), WAIT)
            assert event["type"] == "websocket.send", f"the socket ended: {event}"
            message: dict[str, Any] = json.loads(event["text"])
            if message["type"] == "ping":
                await self.send({"type": "pong"})
            elif message["type"] != "pong":
                return message


@asynccontextmanager
async def websocket(app: Any) -> AsyncIterator[Socket]:
    """A WebSocket to ``app``'s ``/graphql`` (graphql-transport-ws), closed on exit."""
    socket = Socket()
    scope = {
        "type": "websocket",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "scheme": "ws",
        "server": ("test", 80),
        "client": ("127.0.0.1", 50000),
        "root_path": "",
        "path": "/graphql",
        "raw_path": b"/graphql",
        "query_string": b"",
        "headers": [(b"host", b"test"), (b"sec-websocket-protocol", b"graphql-transport-ws")],
        "subprotocols": ["graphql-transport-ws"],
    }
    await socket.to_app.put({"type": "websocket.connect"})
    task = asyncio.create_task(app(scope, socket.to_app.get, socket.from_app.put))
    try:
        accepted = await asyncio.wait_for(socket.from_app.get(), WAIT)
        assert accepted["type"] == "websocket.accept", accepted
        yield socket
    finally:
        await socket.to_app.put({"type": "websocket.disconnect", "code": 1000})
        await asyncio.wait_for(task, WAIT)


class Reader:
    """Runs the examples in order, as a reader would, remembering what they returned."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.data: dict[str, Any] = {}
        self.schema: GraphQLSchema | None = None

    def lookup(self, example: Example, path: str) -> Any:
        value: Any = self.data
        for key in path.split("."):
            assert isinstance(value, dict) and key in value, (
                f"{example}: ${path}: no earlier example returned it "
                f"(they returned {', '.join(self.data) or 'nothing'})"
            )
            value = value[key]
        return value

    def resolve(self, example: Example, value: Any) -> Any:
        """``value`` with each ``"$path"`` string replaced by what it names."""
        if isinstance(value, str) and value.startswith("$"):
            return self.lookup(example, value[1:])
        if isinstance(value, dict):
            return {k: self.resolve(example, v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.resolve(example, v) for v in value]
        return value

    def token(self, example: Example) -> str | None:
        """The bearer token ``as`` names (None: anonymous)."""
        viewer = example.viewer
        if viewer == "anonymous":
            return None
        if viewer == "bad-token":
            return "not-a-token-inkwell-signed"
        if viewer.startswith("$"):
            return str(self.lookup(example, viewer[1:]))
        assert viewer in USERS, f"{example}: as={viewer}: not a viewer the test knows"
        return bearer(self.app.settings, USERS[viewer])["Authorization"].removeprefix("Bearer ")

    async def post(
        self, query: str, operation: str | None, variables: dict[str, Any], token: str | None
    ) -> Any:
        body = {"query": query, "operationName": operation, "variables": variables}
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return await self.app.client.post("/graphql", json=body, headers=headers)

    async def run(self, example: Example) -> None:
        if example.sdl:
            await self.check_sdl(example)
            return
        try:
            operations: list[OperationDefinitionNode | None] = list(
                _operations(parse(example.text))
            )
        except GraphQLSyntaxError:
            operations = [None]  # sent as it is: the server says what is wrong with it
        named = len(operations) > 1
        for operation in operations:
            name = operation.name.value if named and operation and operation.name else None
            if operation and operation.operation == OperationType.SUBSCRIPTION:
                await self.subscribe(example, operation, name)
            else:
                await self.request(example, operation, name)

    async def request(
        self, example: Example, operation: OperationDefinitionNode | None, name: str | None
    ) -> None:
        variables = self.resolve(example, example.variables)
        token = self.token(example)
        mutation = operation is not None and operation.operation == OperationType.MUTATION
        keys = [_key(f) for f in _root_fields(operation)] if operation else []
        if mutation and token is not None:
            await self.check_signed_out(example, name, variables, keys)
        response = await self.post(example.text, name, variables, token)
        assert response.status_code == example.status, (
            f"{example}: HTTP {response.status_code}, not {example.status}: {response.text}"
        )
        if example.status == 401:
            challenge = response.headers.get("www-authenticate", "")
            assert challenge.startswith("Bearer ") and 'error="invalid_token"' in challenge, (
                f"{example}: WWW-Authenticate: {challenge!r}"
            )
        body = response.json()
        errors = body.get("errors") or []
        codes = {(e.get("extensions") or {}).get("code") for e in errors}
        if example.codes:
            assert codes == example.codes, f"{example}: codes {codes}, not {example.codes}: {body}"
        else:
            assert not errors, f"{example}: {errors}"
            assert body.get("data"), f"{example}: no data: {body}"
        data = body.get("data") or {}
        for key in keys if mutation else ():
            got = (data.get(key) or {}).get("__typename")
            if key in example.typenames:
                wanted = example.typenames[key]
                assert got == wanted, f"{example}: {key} is {got}, not {wanted}: {body}"
            elif not example.codes:
                assert got is not None and got.endswith("Payload"), (
                    f"{example}: {key} did not succeed: {data.get(key)} "
                    "(the text says it does; select __typename to show it)"
                )
        unknown = set(example.typenames) - set(keys)
        assert not unknown, f"{example}: expect names fields it does not have: {unknown}"
        self.data.update(data)

    async def check_signed_out(
        self, example: Example, name: str | None, variables: dict[str, Any], keys: list[str]
    ) -> None:
        """Run the mutation signed out: every field must say what stopped it."""
        response = await self.post(example.text, name, variables, None)
        assert response.status_code == 200, f"{example}: signed out: {response.text}"
        body = response.json()
        assert not body.get("errors"), f"{example}: signed out: {body}"
        for key in keys:
            value = body["data"][key] or {}
            assert value.get("__typename") and value.get("message"), (
                f"{example}: signed out, {key} answers {value}: select __typename and "
                "... on MutationError { message }"
            )

    async def subscribe(
        self, example: Example, operation: OperationDefinitionNode, name: str | None
    ) -> None:
        """Subscribe, make the change the subscription follows, and expect its event."""
        variables = self.resolve(example, example.variables)
        (root,) = _root_fields(operation)
        trigger = TRIGGERS.get(root.name.value)
        assert trigger is not None, f"{example}: no trigger for {root.name.value} in TRIGGERS"
        arguments = {
            a.name.value: value_from_ast_untyped(a.value, variables) for a in root.arguments or ()
        }
        token = self.token(example)
        broker = self.app.app.state.broker
        async with websocket(self.app.app) as socket:
            await socket.send(
                {
                    "type": "connection_init",
                    "payload": {"authorization": f"Bearer {token}"} if token else {},
                }
            )
            assert (await socket.receive())["type"] == "connection_ack"
            before = broker.subscription_count
            payload = {"query": example.text, "operationName": name, "variables": variables}
            await socket.send({"id": "1", "type": "subscribe", "payload": payload})
            for _ in range(int(WAIT / 0.01)):
                if broker.subscription_count > before or not socket.from_app.empty():
                    break
                await asyncio.sleep(0.01)
            assert socket.from_app.empty(), f"{example}: {name}: {await socket.receive()}"
            assert broker.subscription_count > before, f"{example}: {name} never registered"
            await trigger(self, arguments)
            message = await socket.receive()
            assert message["type"] == "next", f"{example}: {name}: {message}"
            event = message["payload"]
            assert not event.get("errors") and event["data"][_key(root)], f"{example}: {event}"
            await socket.send({"id": "1", "type": "complete"})

    async def as_admin(self, query: str, **variables: Any) -> dict[str, Any]:
        """A trigger's request, as the admin; it must succeed."""
        return await self.app.data(query, variables, as_user=ADMIN_ID)

    async def check_sdl(self, example: Example) -> None:
        """The excerpt parses as SDL, and each of its types is served exactly so."""
        document = parse(example.text)
        if self.schema is None:
            introspection = await self.app.data(get_introspection_query())
            self.schema = build_client_schema(introspection)  # type: ignore[arg-type]
        for definition in document.definitions:
            assert isinstance(definition, TypeDefinitionNode), (
                f"{example}: not a type definition: {print_ast(definition)}"
            )
            served = self.schema.get_type(definition.name.value)
            assert served is not None, f"{example}: no type {definition.name.value} is served"
            if isinstance(definition, ObjectTypeDefinitionNode | InterfaceTypeDefinitionNode):
                assert isinstance(served, GraphQLObjectType | GraphQLInterfaceType)
                written = {f.name.value: print_ast(f.type) for f in definition.fields or ()}
                actual = {n: str(f.type) for n, f in served.fields.items()}
                assert written == actual, f"{example}: {served.name} is served as {actual}"
                interfaces = {i.name.value for i in definition.interfaces or ()}
                assert interfaces == {i.name for i in served.interfaces}, f"{example}: {served}"


async def _comment_added(reader: Reader, arguments: dict[str, Any]) -> None:
    await reader.as_admin(
        'mutation($p: ID!) { addComment(input: {postId: $p, body: "Nice."}) { __typename } }',
        p=arguments["postId"],
    )


async def _post_published(reader: Reader, arguments: dict[str, Any]) -> None:
    tags = [arguments["tag"]] if arguments.get("tag") else []
    await reader.as_admin(
        """mutation($tags: [String!]!) {
             createPost(input: {title: "Just out", tagNames: $tags, publish: true}) {
               __typename } }""",
        tags=tags,
    )


async def _post_updated(reader: Reader, arguments: dict[str, Any]) -> None:
    post = await reader.as_admin("query($id: ID!) { post(id: $id) { version } }", **arguments)
    await reader.as_admin(
        """mutation($id: ID!, $v: Int!) {
             updatePost(input: {id: $id, expectedVersion: $v, title: "Changed"}) {
               __typename } }""",
        id=arguments["id"],
        v=post["post"]["version"],
    )


async def _post_deleted(reader: Reader, arguments: dict[str, Any]) -> None:
    await reader.as_admin(
        "mutation($id: ID!) { deletePost(input: {id: $id}) { __typename } }", id=arguments["id"]
    )


#: What fires each subscription, given its arguments: a change made as the admin.
TRIGGERS: dict[str, Callable[[Reader, dict[str, Any]], Awaitable[None]]] = {
    "commentAdded": _comment_added,
    "postPublished": _post_published,
    "postUpdated": _post_updated,
    "postDeleted": _post_deleted,
}


async def run_all(app: App, markdown: str) -> int:
    """Run every example of ``markdown`` in order, the next one even when one fails, and fail
    with every failure; returns how many examples there were."""
    reader = Reader(app)
    examples = read_examples(markdown)
    failures = []
    for example in examples:
        try:
            await reader.run(example)
        except AssertionError as failure:
            failures.append(str(failure).splitlines()[0])
    assert not failures, "\n".join(failures)
    return len(examples)


async def test_every_readme_example_does_what_the_readme_says(write_app: App) -> None:
    assert await run_all(write_app, README.read_text(encoding="utf-8")) >= 10


BROKEN = {
    # A signed-out caller reads {} and never learns why: no __typename, no MutationError.
    "no error member": """
<!-- example: as=member -->
```graphql
mutation { createPost(input: {title: "Hello"}) { ... on PostPayload { post { id } } } }
```
""",
    # Not GraphQL (one brace too many, connections without nodes).
    "not graphql": """
<!-- example: expect=error:QUERY_TOO_COSTLY -->
```graphql
{ users(first: 100) { posts(first: 100) { comments(first: 100) { body } } } } }
```
""",
    # The field was renamed nodeId.
    "stale field": """
```graphql
mutation { deletePost(input: {id: "UG9zdDo5OTk="}) { __typename ... on NotFound { id } } }
```
""",
    # The SDL excerpt disagrees with the schema.
    "stale sdl": """
<!-- example: sdl -->
```graphql
type VersionConflict implements MutationError { message: String! id: ID! currentVersion: Int! }
```
""",
}


@pytest.mark.parametrize("markdown", BROKEN.values(), ids=BROKEN.keys())
async def test_a_broken_example_fails(write_app: App, markdown: str) -> None:
    with pytest.raises(AssertionError):
        await run_all(write_app, markdown)
