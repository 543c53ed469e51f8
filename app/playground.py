"""The development playgrounds (H4): GraphiQL served from this package, never from a CDN, so a
machine without internet gets a working page.

The scripts under `app/static/playground` are GraphiQL's and React's browser builds, written by
`make playground` from the versions locked in `tools/playground` (see its LICENSES.txt).
Production serves neither the page nor the scripts.
"""

from __future__ import annotations

import html
import json
from functools import cache
from pathlib import Path

from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from app.auth.tokens import Audience

ASSETS = Path(__file__).resolve().parent / "static" / "playground"
ASSETS_PATH = "/static/playground"

_PAGE = """<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <title>{title}</title>
    <link rel="stylesheet" href="{assets}/graphiql.css">
    <style>
      body {{ margin: 0; height: 100vh; overflow: hidden; }}
      #graphiql {{ height: 100vh; }}
    </style>
  </head>
  <body>
    <div id="graphiql">Loading the playground...</div>
    <script src="{assets}/react.js"></script>
    <script src="{assets}/react-dom.js"></script>
    <script src="{assets}/graphiql.js"></script>
    <script>
      // Same origin: a browser sign-in's session cookie rides along, with the header every
      // browser app sends beside it (README, Cross-site requests).
      const fetcher = GraphiQL.createFetcher({{
        url: window.location.pathname,
        headers: {{ "X-CSRF-Protection": "1" }},
      }});
      ReactDOM.createRoot(document.getElementById("graphiql")).render(
        React.createElement(GraphiQL, {{
          fetcher,
          defaultQuery: {example},
          defaultEditorToolsVisibility: true,
          isHeadersEditorEnabled: true,
          shouldPersistHeaders: true,
        }}),
      );
    </script>
  </body>
</html>
"""


# What each playground opens with: signing in as a demo user of the README.
_EXAMPLES = {
    Audience.STAFF: (
        "Staff playground",
        "# Sign in: the session cookie then rides along with every request here.\n"
        'mutation {\n  signIn(tenant: "acme", email: "owner@acme.example",'
        ' password: "portal-demo-2026") {\n    viewer { name role }\n  }\n}\n',
    ),
    Audience.PORTAL: (
        "Portal playground",
        "# Sign in to the portal with an email or a username.\n"
        'mutation {\n  signIn(login: "harbourview", password: "portal-demo-2026") {\n'
        "    viewer { name email }\n  }\n}\n",
    ),
}


@cache
def playground_page(audience: Audience) -> str:
    title, example = _EXAMPLES[audience]
    return _PAGE.format(
        title=html.escape(title),
        assets=ASSETS_PATH,
        # A JavaScript string literal that cannot close the script element.
        example=json.dumps(example).replace("<", "\\u003c"),
    )


def playground_assets() -> Mount:
    return Mount(ASSETS_PATH, app=StaticFiles(directory=ASSETS), name="playground")
