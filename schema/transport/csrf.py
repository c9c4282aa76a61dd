"""Cross-site request forgery protection for ``/graphql``, matched to bearer-token auth.

CSRF abuses what a browser attaches to a request on its own: cookies, cached HTTP
authentication, a client certificate, or its place on a private network. Inkwell's only
credential is ``Authorization: Bearer <token>``, which a browser never attaches by itself and
which a page on another site can set only through a CORS-preflighted request (that
``schema.transport.cors`` answers). So a request another site makes a browser send without a
preflight runs anonymously, and what is left to protect depends on what it can do:

- **GET** can only run queries (a mutation over GET is refused with 405), anonymously; the
  response stays unreadable to the other site unless CORS allows it. Nothing to protect, so
  GETs pass: that is what urql's default client and Apollo's persisted-query link send (with
  only an ``Accept`` header).
- **Form and text POSTs** (``application/x-www-form-urlencoded``, ``multipart/form-data``,
  ``text/plain``: the Content-Types a page may POST cross-site without a preflight) could run
  anonymous *mutations* (``register``, ``login``) from the victim's browser, that is from its
  address and network, such as an intranet the attacker cannot reach. No GraphQL client
  sends them, so they are refused unless they carry a header only a preflighted request can
  (``GraphQL-Require-Preflight``, or Apollo's names for it). A JSON POST needs nothing.

Source: Apollo Server docs, "CSRF prevention" (the rule and header names); OWASP "Cross-Site
Request Forgery Prevention Cheat Sheet" (ambient credentials); Fetch standard, "CORS-safelisted
request-header".
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from schema.transport.http_errors import send_error

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
    """ASGI middleware refusing, on ``path``, POSTs a page on another site could send without
    a preflight (a simple Content-Type, or none) that carry no preflight header: 400 with
    ``extensions.code = "CSRF_PREVENTED"``. GETs pass (see the module docstring)."""

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
        if scope["method"] != "POST":
            return False
        headers = dict(scope["headers"])
        if any(headers.get(name) for name in PREFLIGHT_HEADERS):
            return False
        content_type = headers.get(b"content-type", b"").decode("latin-1").lower()
        media_type = content_type.split(";")[0].strip()
        # A page cannot send any other Content-Type cross-site without a preflight.
        return not media_type or media_type in SIMPLE_CONTENT_TYPES
