"""`python tests/fault_server.py embed-server ARGS`: the real `amanmcp embed-server` command (same flags,
same embedder, same ready line), with its app wrapped in the test-only fault switch (tests/fault_app.py).

The shipped server has no switch; only this entry point, used by `embed_helpers.embed_server(faults=True)`,
adds one.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import amanmcp.embed_server as shipped
from fault_app import wrap_create_app

shipped.create_app = wrap_create_app(shipped.create_app)  # the CLI imports it from the module when it runs

from amanmcp.cli import main  # noqa: E402

if __name__ == "__main__":
    main()
