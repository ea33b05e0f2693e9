"""Fixture projects written to disk, and one real embedder shared by the session."""

from __future__ import annotations

import os
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from amanmcp.config import Settings, load_config

FILES: dict[str, str] = {
    "src/payments/retry.py": '''
        """Retry policies for outgoing HTTP calls."""

        import time


        def retry_with_backoff(func, attempts=3, base_delay=0.5):
            """Call func again after a failure, doubling the wait each time."""
            for attempt in range(attempts):
                try:
                    return func()
                except ConnectionError:
                    time.sleep(base_delay * 2**attempt)
            raise RuntimeError("gave up after retries")


        class HTTPAdapter:
            """Sends requests over a pooled connection."""

            def send(self, request, timeout=10):
                return self.pool.urlopen(request, timeout=timeout)

            def close(self):
                self.pool.clear()
        ''',
    "src/payments/invoice.py": '''
        from dataclasses import dataclass


        @dataclass
        class Invoice:
            """A bill sent to a customer, with line items and tax."""

            number: str
            total_cents: int

            def apply_discount(self, percent: int) -> int:
                return self.total_cents * (100 - percent) // 100


        def render_invoice_pdf(invoice: Invoice) -> bytes:
            """Lay the invoice out as a PDF document for printing."""
            return b"%PDF" + invoice.number.encode()
        ''',
    "server/main.go": """
        package main

        import "net/http"

        // parseConfigFile reads the YAML configuration from disk.
        func parseConfigFile(path string) (*Config, error) {
            return loadYAML(path)
        }

        // Server answers HTTP requests.
        type Server struct {
            Addr string
        }

        // ListenAndServe starts accepting connections on the address.
        func (s *Server) ListenAndServe() error {
            return http.ListenAndServe(s.Addr, nil)
        }
        """,
    "web/cart.js": """
        // Shopping cart helpers for the storefront.
        export function addItemToCart(cart, item) {
          cart.items.push(item);
          return cart;
        }

        export class CartTotals {
          computeTotal(cart) {
            return cart.items.reduce((sum, item) => sum + item.price, 0);
          }
        }
        """,
    "web/user.ts": """
        export interface UserProfile {
          id: string;
          email: string;
        }

        export function validateEmailAddress(email: string): boolean {
          return /^[^@]+@[^@]+$/.test(email);
        }
        """,
    "engine/src/lib.rs": """
        /// Tokenize a source string into lexical tokens.
        pub fn tokenize_source(input: &str) -> Vec<String> {
            input.split_whitespace().map(String::from).collect()
        }

        pub struct Lexer {
            pos: usize,
        }

        impl Lexer {
            pub fn advance(&mut self) {
                self.pos += 1;
            }
        }
        """,
    "docs/guide.md": """
        # User guide

        Intro text about the project.

        ## Installation

        Install with pip and run the setup wizard.

        ## Troubleshooting

        ### Database locked

        If the database is locked, stop the other writer process and try again.
        """,
    "README.md": """
        # Demo shop

        A demo shop used to test code search.
        """,
    ".gitignore": """
        generated/
        *.log
        """,
    "generated/big_table.py": """
        def generated_function_should_not_be_indexed():
            return 1
        """,
    "debug.log": "ignored log line mentioning retry_with_backoff\n",
    ".env": "SECRET_TOKEN=hunter2-do-not-index\n",
    "deploy/id_rsa": "-----BEGIN OPENSSH PRIVATE KEY-----\nhunter2\n",
    "certs/server.pem": "-----BEGIN CERTIFICATE-----\nhunter2\n",
    "node_modules/leftpad/index.js": "function leftpadFromNodeModules() {}\n",
}


def wait_for(condition: Callable[[], object], timeout: float = 30.0, what: str = "condition") -> object:
    """Poll instead of sleeping a fixed time: fast when things are fast, patient when the box is busy."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def write_project(root: Path, files: dict[str, str] | None = None) -> Path:
    for rel, text in (files or FILES).items():
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(textwrap.dedent(text).lstrip("\n"))
    (root / "assets").mkdir(exist_ok=True)
    (root / "assets" / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00binary retry_with_backoff")
    (root / "legacy.txt").write_bytes("caf\xe9 latin-1 text".encode("latin-1"))
    outside = root.parent / f"{root.name}-outside"
    outside.mkdir(exist_ok=True)
    (outside / "secret_plan.py").write_text("def outside_the_root_function():\n    return 42\n")
    os.symlink(outside / "secret_plan.py", root / "linked_outside.py")
    os.symlink(outside, root / "linked_dir")
    return root


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "shop"
    root.mkdir()
    return write_project(root)


@pytest.fixture(autouse=True)
def _isolated_user_config(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Never read the developer's own ~/.config/amanmcp or AMANMCP_* variables."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path_factory.mktemp("xdg")))
    for key in list(os.environ):
        if key.startswith("AMANMCP_"):
            monkeypatch.delenv(key)


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Derived models (ONNX graphs, distilled static models) are built once per test session, here."""
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("cache"))


def default_local_model() -> str:
    """The default local model's name in the index identity here: `+int8` on the CPU ONNX path."""
    from amanmcp.embed.local import LocalEmbedder

    return LocalEmbedder().identity.model


@pytest.fixture(scope="session")
def embedder():
    from amanmcp.embed.local import LocalEmbedder

    return LocalEmbedder()


@pytest.fixture
def settings(project: Path) -> Settings:
    return load_config(project, env={}).settings
