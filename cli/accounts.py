"""``create-user`` and ``reset-password``: accounts made and mended by an operator (the first
admin of a production database, a locked-out member).

Passwords are read from a prompt (twice, not echoed) or, with ``--password-stdin``, from the
first line of standard input, never from an argument: arguments show in ``ps`` and in shell
history. The same rules as ``register`` apply (``schema.writes.field_checks``).
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import async_sessionmaker

from db import models
from db.engine import command_engine
from schema.auth import sessions
from schema.auth.passwords import hash_password
from schema.writes.field_checks import NAME_MAX, FieldChecks, normalise_email
from settings import Settings


class Refused(Exception):
    """Why the command did nothing, in one line."""


def add_parsers(commands: Any) -> None:
    """Add ``create-user`` and ``reset-password`` to ``commands`` (argparse sub-parsers)."""
    create = commands.add_parser("create-user", help="create an account (e.g. the first admin)")
    create.add_argument("--email", required=True)
    create.add_argument("--name", required=True)
    create.add_argument("--admin", action="store_true", help="with the admin role")
    create.add_argument("--password-stdin", action="store_true", help="read it from stdin")
    create.set_defaults(run=run_create)
    reset = commands.add_parser("reset-password", help="set a new password for an account")
    reset.add_argument("--email", required=True)
    reset.add_argument("--password-stdin", action="store_true", help="read it from stdin")
    reset.set_defaults(run=run_reset)


def run_create(settings: Settings, args: argparse.Namespace) -> int:
    """Create the account; 1 with the reason when it cannot be."""
    checks = FieldChecks()
    email = checks.email("email", args.email)
    name = checks.text("name", args.name, min_length=1, max_length=NAME_MAX)
    return _run(
        checks,
        lambda password: create_user(settings, email, name, password, admin=args.admin),
        args,
    )


def run_reset(settings: Settings, args: argparse.Namespace) -> int:
    """Set the account's new password; 1 with the reason when it cannot be."""
    email = normalise_email(args.email)
    return _run(FieldChecks(), lambda password: reset_password(settings, email, password), args)


def _run(checks: FieldChecks, work: Any, args: argparse.Namespace) -> int:
    try:
        password = checks.password("password", read_password(args.password_stdin))
        if invalid := checks.result():
            raise Refused("; ".join(f"{e.field}: {e.message}" for e in invalid.field_errors))
        print(asyncio.run(work(password)))
    except Refused as exc:
        print(f"inkwell: {exc}", file=sys.stderr)
        return 1
    return 0


def read_password(from_stdin: bool) -> str:
    """The new password: stdin's first line (without its line break), or typed twice at a
    prompt that does not echo. Raises ``Refused`` when the two differ or stdin is empty."""
    if from_stdin:
        line = sys.stdin.readline()
        if not line:
            raise Refused("no password on standard input")
        return line.removesuffix("\n").removesuffix("\r")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Password (again): ") != first:
        raise Refused("the two passwords differ")
    return first


async def create_user(
    settings: Settings, email: str, name: str, password: str, *, admin: bool
) -> str:
    """Create an active account; returns a line saying so. Raises ``Refused`` when the email
    is taken."""
    try:
        async with (
            command_engine(settings) as engine,
            async_sessionmaker(engine)() as session,
            session.begin(),
        ):
            user = models.User(
                email=email,
                name=name,
                role="admin" if admin else "member",
                password_hash=await hash_password(password),
            )
            session.add(user)
            await session.flush()
            return f"created {user.role} {email} (id {user.id})"
    except IntegrityError:
        raise Refused(f"an account with the email {email} exists already") from None


async def reset_password(settings: Settings, email: str, password: str) -> str:
    """Set the password of the account with ``email`` and end all its sessions; returns a
    line saying so. Raises ``Refused`` when there is no such account."""
    async with (
        command_engine(settings) as engine,
        async_sessionmaker(engine)() as session,
        session.begin(),
    ):
        user = await session.scalar(select(models.User).where(models.User.email == email))
        if user is None:
            raise Refused(f"no account has the email {email}")
        # As ``changePassword``, with no session kept: every token issued before is refused
        # and every session ends (whoever held the old password is signed out).
        now = datetime.now(UTC)
        await sessions.set_password(session, user.id, await hash_password(password), now, None)
        ended = await sessions.end(session, now, user.id)
        return f"set a new password for {email}; sessions signed out: {ended}"
