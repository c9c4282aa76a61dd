"""GraphiQL served entirely by Inkwell: the page, its vendored assets, and their routes.

The browser files (React, ReactDOM, GraphiQL 3's UMD build and CSS, the explorer plugin,
graphql-ws's browser build) are committed in ``static/`` at the versions pinned in
``assets.json``, with their SRI hashes; ``scripts/update-graphiql`` refreshes both from npm.
``static/inkwell-graphiql.js`` is Inkwell's own: it renders GraphiQL with a fetcher that sends
the Headers tab's headers with each HTTP operation and, for subscriptions, in the
graphql-transport-ws ``connection_init`` payload. Nothing is loaded from another origin, so the
page works offline and under its Content-Security-Policy (``PAGE_HEADERS``).
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
from dataclasses import dataclass
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

HERE = Path(__file__).resolve().parent
STATIC = HERE / "static"
#: Where the assets are served, relative to the page at ``/graphql``.
STATIC_PATH = "graphql/static"
#: Inkwell's own script: it changes with the code, so browsers revalidate it.
OWN_SCRIPT = "inkwell-graphiql.js"
#: Vendored file names carry their version: cache them for a year, never revalidate.
IMMUTABLE = "public, max-age=31536000, immutable"
#: The page loads only from its own origin (WebSockets included: 'self' covers ws: there).
#: GraphiQL's components set inline styles; its fonts are data: URLs inside its CSS.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
PAGE_HEADERS = {"content-security-policy": CONTENT_SECURITY_POLICY}


@dataclass(frozen=True, slots=True)
class Asset:
    """A file under ``static/``, served as ``/graphql/static/<file>``."""

    file: str
    #: Its SRI hash, ``sha384-<base64>``.
    integrity: str
    cache_control: str


def sri(data: bytes) -> str:
    """The Subresource Integrity form of ``data``'s SHA-384 digest."""
    return "sha384-" + base64.b64encode(hashlib.sha384(data).digest()).decode()


def load_assets() -> dict[str, Asset]:
    """The assets by role (``react``, ``graphiql.js``, ... as in ``assets.json``, plus
    ``inkwell``), with the manifest's hashes; the own script's is computed from its bytes.
    Raises ``OSError``/``KeyError`` when the package data is incomplete."""
    manifest = json.loads((HERE / "assets.json").read_text())["assets"]
    assets = {
        role: Asset(entry["file"], entry["integrity"], IMMUTABLE)
        for role, entry in manifest.items()
    }
    own = (STATIC / OWN_SCRIPT).read_bytes()
    assets["inkwell"] = Asset(OWN_SCRIPT, sri(own), "no-cache")
    return assets


ASSETS = load_assets()
_BY_FILE = {asset.file: asset for asset in ASSETS.values()}

#: Strawberry's tweaks for the explorer plugin inside GraphiQL 3's layout.
_STYLE = """\
      body { margin: 0; height: 100vh; overflow: hidden; }
      #graphiql { height: 100vh; display: flex; }
      .docExplorerHide { display: none; }
      .doc-explorer-contents { overflow-y: hidden !important; }
      .docExplorerWrap { width: unset !important; min-width: unset !important; }
      .graphiql-explorer-actions select { margin-left: 4px; }"""


def _url(role: str) -> str:
    return f"{STATIC_PATH}/{ASSETS[role].file}"


def _tag(role: str) -> str:
    asset, url = ASSETS[role], html.escape(_url(role))
    if asset.file.endswith(".css"):
        return f'<link rel="stylesheet" href="{url}" integrity="{asset.integrity}" />'
    return f'<script src="{url}" integrity="{asset.integrity}"></script>'


#: What GraphiQL shows on first open: a nested read that exercises every relationship.
DEFAULT_QUERY = """\
# Welcome to Inkwell. Press the run button (or Ctrl-Enter).
# extensions.sql in the response shows the SQL statements this query cost:
# one per level of nesting, however many rows come back.
query RecentWriting {
  users(first: 3) {
    totalCount
    edges {
      node {
        name
        posts(first: 2, orderBy: {field: CREATED_AT, direction: DESC}) {
          edges {
            node {
              title
              status
              tags { name }
              comments(first: 2) {
                totalCount
                nodes { body author { name } }
              }
            }
          }
        }
      }
    }
    pageInfo { hasNextPage endCursor }
  }
}
"""


def page_html(default_query: str) -> str:
    """The GraphiQL page: ``default_query`` in the first tab (later visits restore the
    user's tabs), the explorer plugin, every asset from ``/graphql/static/`` with its SRI
    hash, and the settings for ``inkwell-graphiql.js`` as a JSON data block (so no inline
    script is needed)."""
    # A data block ends at "</script"; JSON may escape "<" anywhere as \\u003c.
    config = json.dumps({"defaultQuery": default_query}).replace("<", "\\u003c")
    styles = "\n    ".join(_tag(role) for role in ("graphiql.css", "explorer.css"))
    scripts = "\n    ".join(
        _tag(role)
        for role in ("react", "react-dom", "graphiql.js", "explorer.js", "graphql-ws.js", "inkwell")
    )
    return f"""<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <meta name="viewport" content="width=device-width, initial-scale=1" />
    <title>Inkwell · GraphiQL</title>
    <link rel="icon" href="data:," />
    {styles}
    <style>
{_STYLE}
    </style>
  </head>
  <body>
    <div id="graphiql">Loading…</div>
    <script type="application/json" id="inkwell-graphiql-config">{config}</script>
    {scripts}
  </body>
</html>
"""


async def asset(request: Request) -> Response:
    """``GET /graphql/static/{name}``: a file listed in ``ASSETS`` (by its served name, so
    nothing else on disk is reachable), with its content type and cache lifetime; 404 for
    any other name."""
    found = _BY_FILE.get(request.path_params["name"])
    if found is None:
        return PlainTextResponse("Not Found", status_code=404)
    return FileResponse(
        STATIC / found.file,
        headers={"cache-control": found.cache_control, "x-content-type-options": "nosniff"},
    )


async def to_graphiql(request: Request) -> Response:
    """``GET /``: in a browser, the playground is what there is to see."""
    return RedirectResponse("/graphql", status_code=307)


def routes() -> list[BaseRoute]:
    """The routes GraphiQL adds to the app (only where it is enabled): the assets and the
    redirect from ``/``."""
    return [
        Route(f"/{STATIC_PATH}/{{name}}", asset, methods=["GET", "HEAD"]),
        Route("/", to_graphiql, methods=["GET", "HEAD"]),
    ]


def banner(host: str, port: int, email: str, password: str) -> str:
    """What ``serve`` prints at start in development: where GraphiQL is and how to sign in
    there with the demo admin (``email``/``password``, from ``db.seed``)."""
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    if ":" in shown:
        shown = f"[{shown}]"
    login = (
        f'mutation {{ login(input: {{email: "{email}", password: "{password}"}}) '
        "{ ... on AuthPayload { token } } }"
    )
    return (
        f"GraphiQL: http://{shown}:{port}/graphql\n"
        f"Demo sign-in (development data): run\n  {login}\n"
        'then add {"Authorization": "Bearer <token>"} in the Headers tab.'
    )


def asks_for_page(request: Request) -> bool:
    """Whether ``request`` (Starlette's) is a browser asking for GraphiQL: a GET naming HTML
    in ``Accept`` and carrying no operation. Strawberry also serves the page for
    ``Accept: */*``, which is what a hash-only persisted-query GET from a script or a CDN
    may send: that must execute."""
    params = request.query_params
    return (
        request.method == "GET"
        and not params.get("query")
        and not params.get("extensions")
        and "text/html" in request.headers.get("accept", "")
    )
