"""Cross-site request forgery protection for ``/graphql``.

A browser sends some requests to another site without asking it first (no CORS preflight):
GETs, and POSTs whose Content-Type is ``application/x-www-form-urlencoded``,
``multipart/form-data`` or ``text/plain``. With cookies or other ambient credentials such a
request could run an operation on the user's behalf, and even without them a GET query can be
used to make the server do work. So an operation arriving that way must carry a header a page
cannot set without a preflight; a JSON POST (what GraphQL clients send) needs nothing.
Source: Apollo Server docs, "CSRF prevention" (the same rule and header names).
"""

from __future__ import annotations

from urllib.parse import parse_qs

from starlette.types import ASGIApp, Receive, Scope, Send

from schema.http_errors import send_error

#: Content-Types a cross-site page may POST without a preflight (the Fetch standard's
#: "CORS-safelisted request-header" rule for Content-Type).
SIMPLE_CONTENT_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data", "text/plain")
#: Any of these headers, with any non-empty value, shows the request was preflighted.
PREFLIGHT_HEADERS = (
    b"graphql-require-preflight",
    b"apollo-require-preflight",
    b"x-apollo-operation-name",
)


class CsrfProtection:
    """ASGI middleware refusing, on ``path``, operations sent as simple requests without a
    preflight header: 400 with ``extensions.code = "CSRF_PREVENTED"``. The GraphiQL page
    (a GET without an operation) is not an operation and passes."""

    def __init__(self, app: ASGIApp, path: str = "/graphql") -> None:
        self.app = app
        self.path = path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == self.path and self._forgeable(scope):
            message = (
                "This request could have come from another site. Send JSON (Content-Type: "
                "application/json), or add the header `GraphQL-Require-Preflight: 1`."
            )
            await send_error(send, 400, message, {"code": "CSRF_PREVENTED"})
            return
        await self.app(scope, receive, send)

    @staticmethod
    def _forgeable(scope: Scope) -> bool:
        headers = dict(scope["headers"])
        if any(headers.get(name) for name in PREFLIGHT_HEADERS):
            return False
        content_type = headers.get(b"content-type", b"").decode("latin-1").lower()
        media_type = content_type.split(";")[0].strip()
        if media_type and media_type not in SIMPLE_CONTENT_TYPES:
            return False  # a page cannot send this Content-Type cross-site without a preflight
        if scope["method"] == "GET":
            query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
            return "query" in query or "extensions" in query
        return scope["method"] == "POST"
