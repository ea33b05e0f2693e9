"""Chunker tests against real tree-sitter parses: exact spans, names and kinds per language."""

from __future__ import annotations

from textwrap import dedent

import pytest

from amanmcp.chunk import chunk_file, detect_language
from amanmcp.models import Chunk

Span = tuple[int, int, str | None, str | None]


def chunks(path: str, src: str, **limits: int) -> list[Chunk]:
    """chunk_file plus the invariant every caller relies on: content is exactly the stated lines
    (a piece of one over-long line: a substring of that line, within the size limit)."""
    result = chunk_file(path, src, **limits)
    lines = src.splitlines()
    for c in result:
        assert 1 <= c.start_line <= c.end_line <= len(lines)
        if c.symbol_type == "part":
            assert c.start_line == c.end_line and c.content in lines[c.start_line - 1]
            assert len(c.content) <= limits.get("max_chunk_chars", 6000)
        else:
            assert c.content == "\n".join(lines[c.start_line - 1 : c.end_line])
        assert c.path == path
    assert [(c.start_line, c.end_line) for c in result] == sorted((c.start_line, c.end_line) for c in result)
    return result


def spans(path: str, src: str, **limits: int) -> list[Span]:
    return [(c.start_line, c.end_line, c.symbol, c.symbol_type) for c in chunks(path, src, **limits)]


def src(text: str) -> str:
    return dedent(text).lstrip("\n")


# --- Python ----------------------------------------------------------------------------

PY = src('''
    """Module docstring."""
    import os

    LIMIT = 3

    # Cached helper.
    @functools.cache
    def helper(x):
        return x


    class Point:
        """A point."""

        def __init__(self, x):
            self.x = x

        def norm(self):
            return abs(self.x)


    if __name__ == "__main__":
        helper(1)
''')


def test_python_functions_classes_and_module_code() -> None:
    assert spans("pkg/mod.py", PY) == [
        (1, 4, None, None),
        (6, 9, "helper", "function"),
        (12, 19, "Point", "class"),
        (22, 23, None, None),
    ]
    point = chunks("pkg/mod.py", PY)[2]
    assert point.language == "python" and point.content_type == "code"
    assert point.content.startswith('class Point:\n    """A point."""')


def test_python_big_class_splits_into_header_and_methods() -> None:
    got = spans("pkg/mod.py", PY, max_chunk_lines=5)
    assert got == [
        (1, 4, None, None),
        (6, 9, "helper", "function"),
        (12, 13, "Point", "class"),
        (15, 16, "Point.__init__", "method"),
        (18, 19, "Point.norm", "method"),
        (22, 23, None, None),
    ]


def test_python_decorated_method_and_comment_stay_with_method() -> None:
    code = src("""
        class Service:
            name = "svc"

            # Runs it.
            @staticmethod
            def run():
                pass

            class Config:
                debug = True
    """)
    assert spans("s.py", code, max_chunk_lines=4) == [
        (1, 2, "Service", "class"),
        (4, 7, "Service.run", "method"),
        (9, 10, "Service.Config", "class"),
    ]


def test_huge_function_is_split_into_overlapping_windows() -> None:
    body = "".join(f"    x{i} = {i}\n" for i in range(1, 150))
    code = "def big():\n" + body + "\n\nz = 1\n"  # lines 1..150, blank 151-152, 153
    got = spans("big.py", code, window_lines=60, window_overlap=10)
    assert got == [
        (1, 60, "big", "function"),
        (51, 110, "big", "function"),
        (101, 150, "big", "function"),
        (153, 153, None, None),
    ]


def test_windows_also_respect_the_char_limit() -> None:
    code = "".join(f"v{i} = '{'x' * 90}'\n" for i in range(10))  # 10 lines of ~98 chars
    got = spans("data.py", code, max_chunk_chars=300, window_lines=60, window_overlap=1)
    assert got == [(1, 3, None, None), (3, 5, None, None), (5, 7, None, None), (7, 9, None, None), (9, 10, None, None)]


def test_overlong_single_line_is_cut_into_parts_on_its_line() -> None:
    code = "a = 1\nb = '" + "x" * 500 + "'\nc = 3\n"
    got = chunks("x.py", code, max_chunk_chars=100, window_overlap=1)
    assert [(c.start_line, c.end_line) for c in got] == [(1, 1), *[(2, 2)] * 6, (3, 3)]
    parts = [c for c in got if c.start_line == 2]
    assert all(c.symbol_type == "part" and len(c.content) <= 100 for c in parts)
    assert "".join(c.content for c in parts) == code.splitlines()[1]  # nothing lost, in order


# --- Go --------------------------------------------------------------------------------

GO = src("""
    package geo

    import "math"

    // Point is a location.
    // It is immutable.
    type Point struct {
        X, Y float64
    }

    type (
        ID    int
        Namer interface{ Name() string }
    )

    // Dist measures.
    func Dist(a, b Point) float64 {
        return math.Hypot(a.X-b.X, a.Y-b.Y)
    }

    func (p *Point) Move(dx float64) {
        p.X += dx
    }

    var Origin = Point{}
""")


def test_go_types_functions_and_receiver_methods() -> None:
    assert spans("geo/point.go", GO) == [
        (1, 3, None, None),
        (5, 9, "Point", "struct"),
        (11, 11, None, None),
        (12, 12, "ID", "type"),
        (13, 13, "Namer", "interface"),
        (16, 19, "Dist", "function"),
        (21, 23, "Point.Move", "method"),
        (25, 25, None, None),
    ]


# --- JavaScript / TypeScript / TSX -----------------------------------------------------

JS = src("""
    import { api } from "./api.js";

    /**
     * Adds two numbers.
     */
    export function add(a, b) {
      return a + b;
    }

    export const double = (x) => x * 2;

    class Counter extends Base {
      count = 0;
      onClick = () => {
        this.count++;
      };
      get value() {
        return this.count;
      }
    }

    Counter.prototype.reset = function () {
      this.count = 0;
    };
""")


def test_javascript_function_arrow_class_and_prototype_method() -> None:
    assert spans("web/app.js", JS) == [
        (1, 1, None, None),
        (3, 8, "add", "function"),
        (10, 10, "double", "function"),
        (12, 20, "Counter", "class"),
        (22, 24, "Counter.prototype.reset", "function"),
    ]
    assert spans("web/app.js", JS, max_chunk_lines=4) == [
        (1, 1, None, None),
        (3, 6, "add", "function"),
        (5, 8, "add", "function"),
        (10, 10, "double", "function"),
        (12, 13, "Counter", "class"),
        (14, 16, "Counter.onClick", "method"),
        (17, 19, "Counter.value", "method"),
        (22, 24, "Counter.prototype.reset", "function"),
    ]


TS = src("""
    import type { Db } from "./db";

    /** Something with an area. */
    export interface Shape {
      area(): number;
    }

    export type Id = string | number;

    enum Color { Red, Green }

    export abstract class Repo<T> implements Store {
      constructor(private db: Db) {}
      abstract find(id: Id): T;
      count(): number {
        return 0;
      }
    }

    export const load = async (id: Id): Promise<void> => {
      await fetch(String(id));
    };
""")


def test_typescript_interface_type_enum_class_and_arrow() -> None:
    assert spans("src/repo.ts", TS) == [
        (1, 1, None, None),
        (3, 6, "Shape", "interface"),
        (8, 8, "Id", "type"),
        (10, 10, "Color", "enum"),
        (12, 18, "Repo", "class"),
        (20, 22, "load", "function"),
    ]
    split = spans("src/repo.ts", TS, max_chunk_lines=3)
    assert (12, 12, "Repo", "class") in split
    # The abstract signature is too little for a chunk of its own: it joins the member above.
    assert (13, 14, "Repo.constructor", "method") in split
    assert (15, 17, "Repo.count", "method") in split


def test_tsx_components() -> None:
    code = src("""
        interface Props {
          name: string;
        }

        export function Hello({ name }: Props) {
          return <div className="hi">{name}</div>;
        }

        export const App = () => <Hello name="x" />;
    """)
    assert spans("ui/App.tsx", code) == [
        (1, 3, "Props", "interface"),
        (5, 7, "Hello", "function"),
        (9, 9, "App", "function"),
    ]


# --- Rust ------------------------------------------------------------------------------

RS = src("""
    use std::fmt;

    /// A 2D point.
    #[derive(Debug, Clone)]
    pub struct Point {
        x: i32,
    }

    impl Point {
        /// Makes one.
        pub fn new(x: i32) -> Self {
            Point { x }
        }

        pub fn x(&self) -> i32 {
            self.x
        }
    }

    /// Draws things.
    pub trait Draw {
        fn draw(&self) -> String;
    }

    /// Adds one.
    fn inc(v: i32) -> i32 {
        v + 1
    }
""")


def test_rust_doc_comments_attributes_impl_and_trait() -> None:
    assert spans("src/lib.rs", RS) == [
        (1, 1, None, None),
        (3, 7, "Point", "struct"),
        (9, 18, "Point", "impl"),
        (20, 23, "Draw", "trait"),
        (25, 28, "inc", "function"),
    ]
    assert spans("src/lib.rs", RS, max_chunk_lines=6) == [
        (1, 1, None, None),
        (3, 7, "Point", "struct"),
        (9, 13, "Point.new", "method"),  # `impl Point {` alone says nothing: it joins its first member
        (15, 17, "Point.x", "method"),
        (20, 23, "Draw", "trait"),
        (25, 28, "inc", "function"),
    ]


# --- Java / C / C++ / C# ---------------------------------------------------------------

JAVA = src("""
    package com.acme;

    import java.util.List;

    /** A user. */
    @Entity
    public class User {
        private String name;

        /** Builds one. */
        public User(String name) {
            this.name = name;
        }

        @Override
        public String toString() {
            return name;
        }

        enum Role { ADMIN, GUEST }
    }

    interface Named { String name(); }
""")


def test_java_class_annotations_javadoc_and_split() -> None:
    assert spans("User.java", JAVA) == [
        (1, 3, None, None),
        (5, 21, "User", "class"),
        (23, 23, "Named", "interface"),
    ]
    assert spans("User.java", JAVA, max_chunk_lines=5) == [
        (1, 3, None, None),
        (5, 8, "User", "class"),
        (10, 13, "User.User", "method"),
        (15, 18, "User.toString", "method"),
        (20, 20, "User.Role", "enum"),
        (23, 23, "Named", "interface"),
    ]


C = src("""
    #include <stdio.h>

    /* A node in the list. */
    struct node {
        int value;
        struct node *next;
    };

    typedef enum { RED, GREEN } color_t;

    // Sums the list.
    static int sum(const struct node *n) {
        int s = 0;
        for (; n; n = n->next) s += n->value;
        return s;
    }

    #ifdef DEBUG
    void dump(void) {
        puts("dump");
    }
    #endif

    int prototype_only(int);
""")


def test_c_structs_typedefs_functions_and_preprocessor_blocks() -> None:
    assert spans("list.c", C) == [
        (1, 1, None, None),
        (3, 7, "node", "struct"),
        (9, 9, "color_t", "enum"),
        (11, 16, "sum", "function"),
        (18, 18, None, None),
        (19, 21, "dump", "function"),
        (22, 24, None, None),
    ]


CPP = src("""
    #include <vector>

    namespace geo {

    /// A shape.
    class Shape {
    public:
        virtual ~Shape() = default;
        double area() const {
            return 0;
        }
    };

    template <typename T>
    T clamp(T v, T lo, T hi) {
        return v < lo ? lo : v > hi ? hi : v;
    }

    }  // namespace geo

    double geo::Shape::perimeter() const {
        return 1;
    }
""")


def test_cpp_namespace_is_opened_and_classes_templates_found() -> None:
    assert spans("geo.cpp", CPP) == [
        (1, 1, None, None),
        (3, 12, "Shape", "class"),  # the namespace's opening and closing lines join their neighbours
        (14, 19, "clamp", "function"),
        (21, 23, "geo::Shape::perimeter", "function"),
    ]


CS = src("""
    using System;

    namespace Shop.Orders
    {
        /// <summary>An order.</summary>
        [Serializable]
        public class Order : IOrder
        {
            public int Id { get; set; }

            public Order(int id) { Id = id; }

            /// <summary>Totals.</summary>
            public decimal Total()
            {
                return 0m;
            }
        }

        public interface IOrder { int Id { get; } }
        public enum State { Open, Closed }
    }
""")


def test_csharp_namespace_class_attributes_and_methods() -> None:
    assert spans("Order.cs", CS) == [
        (1, 1, None, None),
        (3, 18, "Order", "class"),  # the namespace header joins the class below it when that fits
        (20, 20, "IOrder", "interface"),
        (21, 21, "State", "enum"),
    ]
    assert spans("Order.cs", CS, max_chunk_lines=5) == [
        (1, 1, None, None),
        (3, 4, "Shop.Orders", "namespace"),
        (5, 9, "Order", "class"),
        (11, 11, "Order.Order", "method"),
        (13, 17, "Order.Total", "method"),
        (20, 20, "IOrder", "interface"),
        (21, 21, "State", "enum"),
    ]


# --- the long tail ---------------------------------------------------------------------

LONG_TAIL: list[tuple[str, str, int, list[Span]]] = [
    (
        "lib/greeter.rb",
        """
        require "json"

        module Util
          # Says hello.
          class Greeter < Base
            attr_reader :name

            # Greets.
            def hi
              puts "hi #{name}"
            end

            def self.build
              new
            end
          end
        end
        """,
        4,
        [
            (1, 1, None, None),
            (3, 3, "Util", "module"),
            (4, 6, "Util.Greeter", "class"),
            (8, 11, "Util.Greeter.hi", "method"),
            (13, 15, "Util.Greeter.build", "method"),
        ],
    ),
    (
        "src/User.php",
        """
        <?php
        namespace App;

        /**
         * A user.
         */
        final class User extends Model
        {
            private int $id;

            /** The id. */
            public function id(): int
            {
                return $this->id;
            }
        }

        function helper($a) { return $a; }
        """,
        6,
        [
            (1, 2, None, None),
            (4, 9, "User", "class"),
            (11, 15, "User.id", "method"),
            (18, 18, "helper", "function"),
        ],
    ),
    (
        "app/Point.kt",
        """
        package app

        /** A point. */
        @Serializable
        data class Point(val x: Int) {
            fun double(): Point = Point(x * 2)

            companion object {
                fun origin() = Point(0)
            }
        }

        interface Shape { fun area(): Double }

        fun top(a: Int): Int {
            return a
        }
        """,
        4,
        [
            (1, 1, None, None),
            (3, 5, "Point", "class"),
            (6, 6, "Point.double", "method"),
            (8, 9, "Point.origin", "method"),  # `companion object {` joins its member
            (13, 13, "Shape", "interface"),
            (15, 17, "top", "function"),
        ],
    ),
    (
        "Sources/Shape.swift",
        """
        import Foundation

        /// Anything with an area.
        protocol Shape {
            func area() -> Double
        }

        struct Square: Shape {
            var side: Double
            init(side: Double) { self.side = side }
            func area() -> Double {
                return side * side
            }
        }

        extension Square { func half() -> Double { side / 2 } }
        """,
        4,
        [
            (1, 1, None, None),
            (3, 6, "Shape", "interface"),
            (8, 9, "Square", "struct"),
            (10, 10, "Square.init", "method"),
            (11, 13, "Square.area", "method"),
            (16, 16, "Square", "impl"),
        ],
    ),
    (
        "src/Main.scala",
        """
        package app

        /** Shapes. */
        trait Shape { def area: Double }

        case class Circle(r: Double) extends Shape {
          def area: Double = {
            math.Pi * r * r
          }
        }

        object Main {
          def main(args: Array[String]): Unit = println("hi")
        }
        """,
        4,
        [
            (1, 1, None, None),
            (3, 4, "Shape", "trait"),
            (6, 6, "Circle", "class"),
            (7, 9, "Circle.area", "method"),
            (12, 14, "Main", "class"),
        ],
    ),
    (
        "lua/mod.lua",
        """
        local M = {}

        --- Adds.
        -- Second line.
        function M.add(a, b)
          return a + b
        end

        local function helper()
          return 1
        end

        M.twice = function(x) return x * 2 end

        return M
        """,
        5,
        [
            (1, 1, None, None),
            (3, 7, "M.add", "function"),
            (9, 11, "helper", "function"),
            (13, 13, "M.twice", "function"),
            (15, 15, None, None),
        ],
    ),
    (
        "bin/deploy.sh",
        """
        #!/usr/bin/env bash
        set -euo pipefail

        # Prints usage.
        usage() {
          echo "usage: deploy"
        }

        function main {
          usage
        }

        main "$@"
        """,
        4,
        [
            (1, 2, None, None),
            (4, 7, "usage", "function"),
            (9, 11, "main", "function"),
            (13, 13, None, None),
        ],
    ),
    (
        "lib/greeter.ex",
        """
        defmodule MyApp.Greeter do
          @moduledoc "Greets."

          @doc \"\"\"
          Hello.
          \"\"\"
          @spec hello(String.t()) :: String.t()
          def hello(name) do
            "Hello " <> name
          end

          def fact(0), do: 1

          def fact(n) when n > 0 do
            n * fact(n - 1)
          end
        end
        """,
        7,
        [
            (1, 2, "MyApp.Greeter", "module"),
            (4, 10, "MyApp.Greeter.hello", "function"),
            (12, 16, "MyApp.Greeter.fact", "function"),
        ],
    ),
    (
        "src/Main.hs",
        """
        module Main where

        import Data.List (sort)

        -- | Factorial.
        fact :: Int -> Int
        fact 0 = 1
        fact n = n * fact (n - 1)

        data Shape = Circle Double | Square Double

        class Pretty a where
          pretty :: a -> String

        main :: IO ()
        main = print (fact 5)
        """,
        4,
        [
            (1, 3, None, None),
            (5, 8, "fact", "function"),
            (10, 10, "Shape", "type"),
            (12, 13, "Pretty", "class"),
            (15, 16, "main", "function"),
        ],
    ),
    (
        "src/main.zig",
        """
        const std = @import("std");

        /// Adds.
        pub fn add(a: i32, b: i32) i32 {
            return a + b;
        }

        pub const Point = struct {
            x: i32,

            pub fn init() Point {
                return .{ .x = 0 };
            }
        };

        test "add works" {
            try std.testing.expect(add(1, 2) == 3);
        }
        """,
        4,
        [
            (1, 1, None, None),
            (3, 6, "add", "function"),
            (8, 9, "Point", "struct"),
            (11, 13, "Point.init", "method"),
            (16, 18, "add works", "test"),
        ],
    ),
]


@pytest.mark.parametrize(("path", "code", "limit", "expected"), LONG_TAIL, ids=[case[0] for case in LONG_TAIL])
def test_long_tail_languages(path: str, code: str, limit: int, expected: list[Span]) -> None:
    # Limits just under each container's size, so containers open and members get named too.
    assert spans(path, src(code), max_chunk_lines=limit) == expected


# --- markdown and prose ----------------------------------------------------------------

MD = src("""
    Intro text before any heading.

    # Install

    Pick your platform.

    ## Linux

    ```bash
    # not a heading
    apt install thing
    ```

    ## macOS
    brew install thing

    # Usage ##
    Run it.
""")


def test_markdown_sections_have_heading_paths_and_ignore_fenced_hashes() -> None:
    got = chunks("docs/README.md", MD)
    assert [(c.start_line, c.end_line, c.symbol, c.symbol_type) for c in got] == [
        (1, 1, None, "section"),
        (3, 5, "Install", "section"),
        (7, 12, "Install > Linux", "section"),
        (14, 15, "Install > macOS", "section"),
        (17, 18, "Usage", "section"),
    ]
    assert {c.content_type for c in got} == {"docs"} and got[0].language == "markdown"


def test_markdown_big_section_is_windowed_with_its_path() -> None:
    text = "# Big\n" + "".join(f"line {i}\n" for i in range(1, 30))
    assert spans("a.md", text, max_chunk_lines=10, window_lines=10, window_overlap=2) == [
        (1, 10, "Big", "section"),
        (9, 18, "Big", "section"),
        (17, 26, "Big", "section"),
        (25, 30, "Big", "section"),
    ]


def test_prose_and_unknown_files_are_windowed() -> None:
    text = "".join(f"para {i}\n" for i in range(1, 26))
    rst = chunks("docs/guide.rst", text, max_chunk_lines=10, window_lines=10, window_overlap=3)
    assert [(c.start_line, c.end_line) for c in rst] == [(1, 10), (8, 17), (15, 24), (22, 25)]
    assert {(c.language, c.content_type, c.symbol) for c in rst} == {("rst", "docs", None)}
    unknown = chunks("data/file.weird", "a\nb\n")
    assert [(c.start_line, c.end_line, c.language, c.content_type) for c in unknown] == [(1, 2, "text", "docs")]
    yaml = chunks("ci.yml", "on: push\njobs: {}\n")
    assert [(c.language, c.content_type) for c in yaml] == [("yaml", "code")]


# --- edge cases ------------------------------------------------------------------------


def test_code_without_symbols_still_gets_windows() -> None:
    code = "import sys\n\nprint(sys.argv)\n"
    assert spans("script.py", code) == [(1, 3, None, None)]
    assert spans("broken.go", "}}} ((( not go at all\n") == [(1, 1, None, None)]


def test_empty_and_blank_files_give_nothing() -> None:
    assert chunk_file("a.py", "") == []
    assert chunk_file("a.md", "  \n\n\t\n") == []


def test_crlf_line_endings() -> None:
    code = PY.replace("\n", "\r\n")
    got = chunks("pkg/mod.py", code)
    assert [(c.start_line, c.end_line, c.symbol) for c in got] == [
        (1, 4, None),
        (6, 9, "helper"),
        (12, 19, "Point"),
        (22, 23, None),
    ]
    assert all("\r" not in c.content for c in got)


def test_every_meaningful_line_is_covered_in_every_sample() -> None:
    samples = [("m.py", PY), ("g.go", GO), ("a.js", JS), ("r.ts", TS), ("l.rs", RS), ("U.java", JAVA)]
    samples += [("c.c", C), ("g.cpp", CPP), ("O.cs", CS), ("R.md", MD)]
    samples += [(path, src(code)) for path, code, _, _ in LONG_TAIL]
    for path, code in samples:
        for limit in (4, 120):
            covered = {
                n for c in chunks(path, code, max_chunk_lines=limit) for n in range(c.start_line, c.end_line + 1)
            }
            for number, line in enumerate(code.splitlines(), start=1):
                meaningful = line.strip() not in ("", "}", "};", ")", "end")
                assert number in covered or not meaningful, (path, limit, number, line)


def test_bad_window_settings_are_rejected() -> None:
    with pytest.raises(ValueError):
        chunk_file("a.py", "x = 1\n", window_lines=10, window_overlap=10)


@pytest.mark.parametrize(
    ("path", "language"),
    [
        ("a/b.py", "python"), ("x.pyi", "python"), ("main.go", "go"), ("app.jsx", "javascript"),
        ("m.mjs", "javascript"), ("a.ts", "typescript"), ("a.tsx", "tsx"), ("lib.rs", "rust"),
        ("A.java", "java"), ("x.c", "c"), ("x.h", "c"), ("x.hpp", "cpp"), ("x.cc", "cpp"),
        ("P.cs", "csharp"), ("a.rb", "ruby"), ("i.php", "php"), ("a.kt", "kotlin"), ("a.swift", "swift"),
        ("a.scala", "scala"), ("a.lua", "lua"), ("run.sh", "bash"), ("a.ex", "elixir"), ("a.exs", "elixir"),
        ("Main.hs", "haskell"), ("a.zig", "zig"), ("README.md", "markdown"), ("x.MDX", "markdown"),
        ("c.yaml", "yaml"), ("c.yml", "yaml"), ("pyproject.toml", "toml"), ("p.json", "json"),
        ("setup.cfg", "ini"), ("notes.txt", "text"), ("index.rst", "rst"), ("Makefile", "make"),
        ("Gemfile", "ruby"), ("blob.bin", None), ("LICENSE", None),
    ],
)  # fmt: skip
def test_detect_language(path: str, language: str | None) -> None:
    assert detect_language(path) == language


def test_lines_about_a_member_join_it_instead_of_becoming_header_fragments() -> None:
    code = src('''
        class Manager:
            """Hands out querysets."""

            def as_manager(cls):
                return cls()

            as_manager.queryset_only = True
            as_manager = classmethod(as_manager)

            limit = 10

            def count(self):
                return 0
    ''')
    assert spans("m.py", code, max_chunk_lines=6) == [
        (1, 2, "Manager", "class"),
        (4, 8, "Manager.as_manager", "method"),
        (10, 13, "Manager.count", "method"),  # not about as_manager: a stray line joins the member below
    ]


def test_a_comment_banner_joins_the_member_it_introduces() -> None:
    code = src('''
        class Store:
            """Keeps things."""

            def put(self, x):
                return x

            ###################
            # PRIVATE METHODS #
            ###################

            def _flush(self):
                return None
    ''')
    assert spans("s.py", code, max_chunk_lines=7) == [
        (1, 2, "Store", "class"),
        (4, 5, "Store.put", "method"),
        (7, 12, "Store._flush", "method"),
    ]


def test_javascript_object_literal_functions_and_a_doc_block_above_a_blank_line() -> None:
    code = src("""
        import utils from './utils.js';

        /**
         * Pick the adapter for this environment.
         */

        utils.getAdapter = function getAdapter(name) {
          return name;
        };

        export default {
          getAdapter: (adapters) => {
            return adapters[0];
          },
          isBlob(thing) {
            return thing instanceof Blob;
          },
          toJSON: function (x) {
            return JSON.stringify(x);
          },
          404: function () {
            return 'a table entry, not a name';
          },
          name: 'adapters'
        };
    """)
    got = spans("lib/adapters.js", code)
    assert (3, 9, "utils.getAdapter", "function") in got  # the doc block belongs to what it documents
    assert [s[2] for s in got if s[2]] == ["utils.getAdapter", "getAdapter", "isBlob", "toJSON"]


def test_rust_associated_types_and_a_bare_impl_header_join_the_members() -> None:
    code = src("""
        pub struct LinesCodec {
            max: usize,
        }

        impl Decoder for LinesCodec {
            type Item = String;
            type Error = LinesCodecError;

            fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<String>, LinesCodecError> {
                let line = buf.split_to(self.max);
                Ok(Some(line))
            }

            fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<String>, LinesCodecError> {
                self.decode(buf)
            }
        }
    """)
    got = spans("src/lines.rs", code, max_chunk_lines=8)
    assert got == [
        (1, 3, "LinesCodec", "struct"),
        (5, 12, "LinesCodec.decode", "method"),  # no one-line `type Item` chunks, no bare `impl ... {`
        (14, 16, "LinesCodec.decode_eof", "method"),
    ]


def test_rst_sections_have_title_paths() -> None:
    code = src("""
        =========
        Top Title
        =========

        Intro text.

        Install
        -------

        pip install it.

        Details
        ~~~~~~~

        Run it::

            not a title
            -----------
    """)
    assert spans("docs/guide.rst", code) == [
        (1, 5, "Top Title", "section"),
        (7, 10, "Top Title > Install", "section"),
        (12, 18, "Top Title > Install > Details", "section"),
    ]
