"""The authorization matrix: every mutation, as anonymous, another member, the owner, an admin.

Members write their own content; admins may change anyone's; anonymous requests may only
register and sign in. Each case gets a fresh target, made by the owner through the API.
"""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy import text

from tests.conftest import ADMIN_ID, OTHER, OWNER, App
from tests.test_mutations import create_post
from tests.test_sessions import email_of
from tests.truth import digest

ANONYMOUS = None
ROLES = {"anonymous": ANONYMOUS, "other member": OTHER, "owner": OWNER, "admin": ADMIN_ID}

Setup = Callable[[App], Awaitable[tuple[str, dict[str, Any]]]]
_accounts = itertools.count(1)


async def _new_member(app: App) -> str:
    """A fresh member account (the target of a user mutation)."""
    async with app.engine.begin() as conn:
        result = await conn.execute(
            text("INSERT INTO users (email, name) VALUES (:e, 'Target') RETURNING id"),
            {"e": f"target{next(_accounts)}@example.com"},
        )
        return str(result.scalar_one())


async def _post(app: App) -> str:
    return str((await create_post(app, publish=True))["id"])


async def _comment(app: App) -> str:
    post = await _post(app)
    data = await app.data(
        'mutation($p: ID!) { addComment(input: {postId: $p, body: "mine"}) '
        "{ ... on CommentPayload { comment { id } } } }",
        {"p": post},
        as_user=OWNER,
    )
    return str(data["addComment"]["comment"]["id"])


def on(field: str, input_type: str) -> str:
    return f"mutation($i: {input_type}!) {{ {field}(input: $i) {{ __typename }} }}"


async def update_user(app: App) -> tuple[str, dict[str, Any]]:
    return on("updateUser", "UpdateUserInput"), {
        "i": {"id": await _new_member(app), "expectedVersion": 1, "bio": "new bio"}
    }


async def deactivate_user(app: App) -> tuple[str, dict[str, Any]]:
    return on("deactivateUser", "UserIdInput"), {"i": {"id": await _new_member(app)}}


async def delete_user(app: App) -> tuple[str, dict[str, Any]]:
    return on("deleteUser", "UserIdInput"), {"i": {"id": await _new_member(app)}}


async def create_post_case(app: App) -> tuple[str, dict[str, Any]]:
    return on("createPost", "CreatePostInput"), {"i": {"title": "t"}}


async def create_posts_case(app: App) -> tuple[str, dict[str, Any]]:
    return on("createPosts", "CreatePostsInput"), {"i": {"posts": [{"title": "t"}]}}


async def update_post(app: App) -> tuple[str, dict[str, Any]]:
    return on("updatePost", "UpdatePostInput"), {
        "i": {"id": await _post(app), "expectedVersion": 1, "title": "x"}
    }


async def publish_post(app: App) -> tuple[str, dict[str, Any]]:
    return on("publishPost", "PostIdInput"), {"i": {"id": await _post(app)}}


async def unpublish_post(app: App) -> tuple[str, dict[str, Any]]:
    return on("unpublishPost", "PostIdInput"), {"i": {"id": await _post(app)}}


async def delete_post(app: App) -> tuple[str, dict[str, Any]]:
    return on("deletePost", "PostIdInput"), {"i": {"id": await _post(app)}}


async def set_post_tags(app: App) -> tuple[str, dict[str, Any]]:
    return on("setPostTags", "SetPostTagsInput"), {
        "i": {"postId": await _post(app), "tagNames": ["x"]}
    }


async def add_comment(app: App) -> tuple[str, dict[str, Any]]:
    return on("addComment", "AddCommentInput"), {"i": {"postId": await _post(app), "body": "b"}}


async def update_comment(app: App) -> tuple[str, dict[str, Any]]:
    return on("updateComment", "UpdateCommentInput"), {
        "i": {"id": await _comment(app), "expectedVersion": 1, "body": "b"}
    }


async def delete_comment(app: App) -> tuple[str, dict[str, Any]]:
    return on("deleteComment", "CommentIdInput"), {"i": {"id": await _comment(app)}}


async def register(app: App) -> tuple[str, dict[str, Any]]:
    return on("register", "RegisterInput"), {
        "i": {
            "email": f"new{next(_accounts)}@example.com",
            "name": "New",
            "password": "long enough",
        }
    }


async def login(app: App) -> tuple[str, dict[str, Any]]:
    return on("login", "LoginInput"), {
        "i": {"email": "admin@example.com", "password": "inkwell-demo"}
    }


async def _owner_session(app: App) -> dict[str, Any]:
    """A session of the owner's, started through ``login``: its id and refresh token."""
    data = await app.data(
        'mutation($e: String!) { login(input: {email: $e, password: "inkwell-demo"}) '
        "{ ... on AuthPayload { sessionId refreshToken } } }",
        {"e": await email_of(app, OWNER)},
    )
    return data["login"]  # type: ignore[no-any-return]


async def refresh_session(app: App) -> tuple[str, dict[str, Any]]:
    # The refresh token is the credential: whoever presents it (the viewer aside) refreshes.
    session = await _owner_session(app)
    return on("refreshSession", "RefreshSessionInput"), {
        "i": {"refreshToken": session["refreshToken"]}
    }


async def sign_out(app: App) -> tuple[str, dict[str, Any]]:
    return on("signOut", "SignOutInput"), {
        "i": {"sessionId": (await _owner_session(app))["sessionId"]}
    }


async def sign_out_everywhere(app: App) -> tuple[str, dict[str, Any]]:
    await _owner_session(app)
    return on("signOutEverywhere", "SignOutEverywhereInput"), {"i": {"userId": str(OWNER)}}


async def change_password(app: App) -> tuple[str, dict[str, Any]]:
    # Each viewer changes their own password: the mutation has no target but the viewer.
    return on("changePassword", "ChangePasswordInput"), {
        "i": {"currentPassword": "inkwell-demo", "newPassword": "a new password"}
    }


OWNED = {"anonymous": "Unauthenticated", "other member": "Forbidden"}
ANY_MEMBER = {"anonymous": "Unauthenticated"}
PUBLIC: dict[str, str] = {}
NOT_FOUND = "NotFound"

#: mutation -> (setup, success payload, failures by role); every other role succeeds.
MATRIX: dict[str, tuple[Setup, str, dict[str, str]]] = {
    "register": (register, "AuthPayload", PUBLIC),
    "login": (login, "AuthPayload", PUBLIC),
    "refreshSession": (refresh_session, "AuthPayload", PUBLIC),
    # Only the viewer's own sessions: another's, an admin's included, is not found.
    "signOut": (
        sign_out,
        "SignOutPayload",
        OWNED | {"other member": "NotFound", "admin": "NotFound"},
    ),
    "signOutEverywhere": (sign_out_everywhere, "SignOutPayload", OWNED),
    "changePassword": (change_password, "AuthPayload", ANY_MEMBER),
    "updateUser": (update_user, "UserPayload", OWNED),
    "deactivateUser": (deactivate_user, "UserPayload", OWNED),
    "deleteUser": (delete_user, "DeleteUserPayload", OWNED),
    "createPost": (create_post_case, "PostPayload", ANY_MEMBER),
    "createPosts": (create_posts_case, "CreatePostsPayload", ANY_MEMBER),
    "updatePost": (update_post, "PostPayload", OWNED),
    "publishPost": (publish_post, "PostPayload", OWNED),
    "unpublishPost": (unpublish_post, "PostPayload", OWNED),
    "deletePost": (delete_post, "DeletePostPayload", OWNED),
    "setPostTags": (set_post_tags, "PostPayload", OWNED),
    "addComment": (add_comment, "CommentPayload", ANY_MEMBER),
    "updateComment": (update_comment, "CommentPayload", OWNED),
    "deleteComment": (delete_comment, "DeleteCommentPayload", OWNED),
}


def test_the_matrix_covers_every_mutation() -> None:
    from schema import Mutation

    fields = {f.graphql_name or f.python_name for f in Mutation.__strawberry_definition__.fields}
    assert {_camel(name) for name in fields} == set(MATRIX)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


@pytest.mark.parametrize("mutation", sorted(MATRIX))
async def test_authorization_matrix(write_app: App, mutation: str) -> None:
    setup, success, failures = MATRIX[mutation]
    outcomes = {}
    for role, user in ROLES.items():
        query, variables = await setup(write_app)
        if role == "owner" and mutation.endswith("User"):
            user = int(variables["i"]["id"])  # a user mutation's owner is its target
        before = await digest(write_app.engine)
        data = await write_app.data(query, variables, as_user=user)
        outcomes[role] = data[next(iter(data))]["__typename"]
        if role in failures:
            assert await digest(write_app.engine) == before, (mutation, role)
    expected = {role: failures.get(role, success) for role in ROLES}
    assert outcomes == expected
