"""Accounts: sign up, log in, read users, change one's status."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, bindparam, select
from sqlalchemy.exc import IntegrityError

from gql_feed.services.errors import BadUserInput, ServerBusy, Unauthenticated
from gql_feed.services.known_users import KnownUsers
from gql_feed.services.passwords import Passwords
from gql_feed.services.records import UserRecord
from gql_feed.services.throttle import LoginThrottle, SignupThrottle
from gql_feed.services.tokens import TokenService
from gql_feed.storage.database import Database
from gql_feed.storage.models import User

NEW_USER_STATUS = "I am new!"
MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 1024
MAX_NAME_LENGTH = 200
MAX_STATUS_LENGTH = 500
# Deliberately plain: one @, no spaces, a dot in the domain. Real proof is a sent email.
EMAIL_PATTERN = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s.]{2,}$")
LOGIN_REFUSED = "Invalid email or password."
ACCOUNT_GONE = "Your account no longer exists."
_USERS = User.metadata.tables[User.__tablename__]
_SELECT_USERS = select(
    _USERS.c.id, _USERS.c.email, _USERS.c.name, _USERS.c.status, _USERS.c.created_at
).where(_USERS.c.id.in_(bindparam("ids", expanding=True)))


@dataclass(frozen=True, slots=True)
class LoginResult:
    token: str
    expires_at: datetime
    user: UserRecord


def normalize_email(email: str) -> str:
    return email.strip().lower()


@dataclass(frozen=True)
class AccountService:
    db: Database
    tokens: TokenService
    throttle: LoginThrottle
    signups: SignupThrottle
    passwords: Passwords
    known_users: KnownUsers

    async def signup(
        self, email: str, name: str, password: str, client: str = "unknown"
    ) -> UserRecord:
        """A new account. Counted against `client`'s signup allowance once the input is
        valid, before the costly hash; a refusal (TOO_MANY_REQUESTS) stores nothing."""
        email = normalize_email(email)
        name = name.strip()
        problems: dict[str, str] = {}
        if len(email) > 320 or not EMAIL_PATTERN.match(email):
            problems["email"] = "Enter a valid email address."
        if not name:
            problems["name"] = "The name must not be blank."
        elif len(name) > MAX_NAME_LENGTH:
            problems["name"] = f"The name must be at most {MAX_NAME_LENGTH} characters."
        if len(password) < MIN_PASSWORD_LENGTH:
            problems["password"] = f"The password needs at least {MIN_PASSWORD_LENGTH} characters."
        elif len(password) > MAX_PASSWORD_LENGTH:
            problems["password"] = f"The password must be at most {MAX_PASSWORD_LENGTH} characters."
        if problems:
            raise BadUserInput(problems)
        await self.signups.attempt(client)
        try:
            password_hash = await self.passwords.hash(password)
        except ServerBusy:
            await self.signups.cancel(client)  # the server's refusal, not the client's signup
            raise
        try:
            async with self.db.write() as session, session.begin():
                user = User(
                    email=email, name=name, password_hash=password_hash, status=NEW_USER_STATUS
                )
                session.add(user)
                await session.flush()
                record = UserRecord.of(user)
        except IntegrityError:
            raise BadUserInput({"email": "This email is already registered."}) from None
        self.known_users.remember(record.id)
        return record

    async def login(self, email: str, password: str, client: str) -> LoginResult:
        email = normalize_email(email)
        account, address = f"email:{email}", f"client:{client}"
        await self.throttle.attempt(account, address)
        try:
            async with self.db.read() as session:
                user = await session.scalar(select(User).where(User.email == email))
            valid = await self.passwords.verify(user.password_hash if user else None, password)
        except ServerBusy:
            await self.throttle.forgive(account, address)  # no password was checked
            raise
        if user is None or not valid:
            raise Unauthenticated(LOGIN_REFUSED)
        await self.throttle.succeeded(account, address)
        self.known_users.remember(user.id)
        token, expires_at = self.tokens.issue(user.id)
        return LoginResult(token, expires_at, UserRecord.of(user))

    async def viewer(self, user_id: int) -> UserRecord:
        """The user a valid token names; a token for no (longer existing) user is no login."""
        users = await self.get_many([user_id])
        if users[0] is None:
            self.known_users.remember(user_id, exists=False)
            raise Unauthenticated(ACCOUNT_GONE)
        return users[0]

    async def get_many(self, user_ids: Sequence[int]) -> list[UserRecord | None]:
        """Users in the order asked, None for unknown ids: one query for the whole batch."""
        wanted = sorted(set(user_ids))

        def read(connection: Connection) -> dict[int, UserRecord]:
            rows = connection.execute(_SELECT_USERS, {"ids": wanted})
            return {row.id: UserRecord(*row) for row in rows}

        found = await self.db.run_read(read)
        return [found.get(user_id) for user_id in user_ids]

    async def update_status(self, user_id: int, status: str) -> UserRecord:
        status = status.strip()
        if not status:
            raise BadUserInput({"status": "The status must not be blank."})
        if len(status) > MAX_STATUS_LENGTH:
            raise BadUserInput(
                {"status": f"The status must be at most {MAX_STATUS_LENGTH} characters."}
            )
        async with self.db.write() as session, session.begin():
            user = await session.get(User, user_id)
            if user is None:
                raise Unauthenticated(ACCOUNT_GONE)
            user.status = status
            return UserRecord.of(user)
