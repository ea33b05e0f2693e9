"""find_references checked against language tools nobody here wrote: jedi (Python), the TypeScript language service.

    python benchmarks/graph_accuracy.py python [--sample 50] [--seed 7] [--corpus NAME ...]
    python benchmarks/graph_accuracy.py ts --typescript DIR [--sample 50] [--corpus NAME ...]
        (DIR: `npm install --prefix DIR typescript@5`; 7.x has no JS language-service API)
    python benchmarks/graph_accuracy.py counts [--corpus NAME ...]     # Go/Rust: counts and a sample to check by hand

Python: for each pip corpus of shared/bench/corpora.json (the package folder of its wheel, copied to
a scratch folder so no shared index is touched), the functions, methods and classes jedi itself
lists (`get_names`, nested functions left out) are sampled; for each, jedi's
`Script.get_references()` over the project and our `find_references` (subject `path:line` of the
definition) give sets of (path, line); precision and recall are computed per symbol and over all
locations (micro). JS/TS: the same with the TypeScript language service's `findReferences` run by
node on the JS/TS corpora of corpora-multilang.json (its `navigationTree` lists the definitions).
Benchmark-only dependencies: `pip install jedi`, `npm install --prefix DIR typescript`.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from corpora import CACHE, corpora

from amanmcp.config import load_config
from amanmcp.embed.factory import select_embedder
from amanmcp.graph.service import GraphService
from amanmcp.indexer import Indexer

SCRATCH = CACHE / "graph-accuracy"
Location = tuple[str, int]


def scratch_copy(source: Path, name: str) -> Path:
    """A private copy of a corpus folder (its root folder name kept): the index is written inside it."""
    target = SCRATCH / name / source.name
    if not target.is_dir():
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(source, target, ignore=shutil.ignore_patterns(".amanmcp", "node_modules"))
    return target


def index(root: Path) -> float:
    loaded = load_config(root, env={"AMANMCP_EMBEDDER": "static"})
    started = time.perf_counter()
    Indexer(root, loaded.settings, select_embedder(loaded.settings).embedder).run()
    return time.perf_counter() - started


def score(ours: set[Location], theirs: set[Location]) -> tuple[int, int, int]:
    return len(ours & theirs), len(ours), len(theirs)


def report(name: str, rows: list[dict], out: dict) -> None:  # type: ignore[type-arg]
    hit = sum(r["hit"] for r in rows)
    ours = sum(r["ours"] for r in rows)
    theirs = sum(r["theirs"] for r in rows)
    precision = hit / ours if ours else 1.0
    recall = hit / theirs if theirs else 1.0
    macro_p = sum(r["hit"] / r["ours"] if r["ours"] else 1.0 for r in rows) / max(len(rows), 1)
    macro_r = sum(r["hit"] / r["theirs"] if r["theirs"] else 1.0 for r in rows) / max(len(rows), 1)
    out[name] = {"symbols": len(rows), "locations_ours": ours, "locations_theirs": theirs, "precision": precision,
                 "recall": recall, "macro_precision": macro_p, "macro_recall": macro_r}
    print(f"{name:<10} symbols {len(rows):>3}  ours {ours:>5}  theirs {theirs:>5}  precision {precision:.3f}  "
          f"recall {recall:.3f}  (per symbol: {macro_p:.3f} / {macro_r:.3f})", flush=True)


# -- Python: jedi --------------------------------------------------------------------------------


def python_corpus(name: str, source: Path, sample: int, seed: int, verbose: bool) -> list[dict]:  # type: ignore[type-arg]
    import jedi

    root = scratch_copy(source, name)
    seconds = index(root)
    parent = root.parent
    stdlib = [sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["platstdlib"]]
    project = jedi.Project(path=parent, sys_path=[str(parent), *stdlib], smart_sys_path=False)
    symbols = []
    for file in sorted(root.rglob("*.py")):
        script = jedi.Script(path=file, project=project)
        for d in script.get_names(all_scopes=True, definitions=True):
            if d.type not in ("function", "class") or d.module_path != file:
                continue
            code = d.get_line_code().lstrip()
            if not code.startswith(("def ", "async def ", "class ")):
                continue  # an import or an assignment naming a function, not its definition
            parent_def = d.parent()
            if parent_def is not None and parent_def.type == "function":
                continue  # nested functions: not in the sample
            symbols.append((file, d.line, d.column, d.full_name or d.name))
    chosen = random.Random(seed).sample(symbols, min(sample, len(symbols)))
    graph = GraphService(root)
    rows = []
    for file, line, column, full_name in chosen:
        rel = file.relative_to(root).as_posix()
        script = jedi.Script(path=file, project=project)
        theirs = {(Path(r.module_path).relative_to(root).as_posix(), r.line)
                  for r in script.get_references(line, column, include_builtins=False, scope="project")
                  if r.module_path is not None and Path(r.module_path).is_relative_to(root)}
        answer = graph.query(f"{rel}:{line}", "find_references", max_nodes=500)
        ours = {(r.path, r.start_line) for r in answer.results} if answer.resolution == "resolved" else set()
        hit, n_ours, n_theirs = score(ours, theirs)
        rows.append({"symbol": full_name, "hit": hit, "ours": n_ours, "theirs": n_theirs,
                     "missed": sorted(theirs - ours)[:10], "extra": sorted(ours - theirs)[:10]})
        if verbose and (ours != theirs):
            print(f"  {full_name} ({rel}:{line}): missed {sorted(theirs - ours)[:6]} extra {sorted(ours - theirs)[:6]}")
    graph.close()
    print(f"  {name}: {len(symbols)} definitions, indexed in {seconds:.1f} s", flush=True)
    return rows


# -- JS/TS: the TypeScript language service ----------------------------------------------------------

TS_SCRIPT = r"""
const ts = require(process.argv[2]);
const path = require('path');
const fs = require('fs');
const root = process.argv[3];
const sample = parseInt(process.argv[4]);
const seed = parseInt(process.argv[5]);
const exts = ['.ts', '.tsx', '.js', '.jsx', '.mjs', '.cjs'];
const files = [];
(function walk(dir) {
  for (const e of fs.readdirSync(dir, {withFileTypes: true})) {
    if (e.name === 'node_modules' || e.name.startsWith('.')) continue;
    const p = path.join(dir, e.name);
    if (e.isDirectory()) walk(p);
    else if (exts.some(x => e.name.endsWith(x)) && !e.name.endsWith('.min.js')) files.push(p);
  }
})(root);
const host = {
  getScriptFileNames: () => files, getScriptVersion: () => '1',
  getScriptSnapshot: f => fs.existsSync(f) ? ts.ScriptSnapshot.fromString(fs.readFileSync(f, 'utf8')) : undefined,
  getCurrentDirectory: () => root,
  getCompilationSettings: () => ({allowJs: true, checkJs: false, target: ts.ScriptTarget.ES2020,
    module: ts.ModuleKind.ESNext, moduleResolution: ts.ModuleResolutionKind.Node10, jsx: ts.JsxEmit.Preserve}),
  getDefaultLibFileName: o => ts.getDefaultLibFilePath(o),
  fileExists: ts.sys.fileExists, readFile: ts.sys.readFile, readDirectory: ts.sys.readDirectory,
  directoryExists: ts.sys.directoryExists, getDirectories: ts.sys.getDirectories,
};
const ls = ts.createLanguageService(host, ts.createDocumentRegistry());
const wanted = new Set(['function', 'method', 'class']);
const symbols = [];
for (const f of files) {
  const tree = ls.getNavigationTree(f);
  (function visit(node, parentKind) {
    if (wanted.has(node.kind) && node.nameSpan && parentKind !== 'function' && parentKind !== 'method') {
      symbols.push({file: f, pos: node.nameSpan.start, name: node.text});
    }
    for (const c of node.childItems || []) visit(c, node.kind === 'module' || node.kind === 'script' ? '' : node.kind);
  })(tree, '');
}
let s = seed;
function rand() { s = (s * 1103515245 + 12345) % 2147483648; return s / 2147483648; }
for (let i = symbols.length - 1; i > 0; i--) {
  const j = Math.floor(rand() * (i + 1));
  [symbols[i], symbols[j]] = [symbols[j], symbols[i]];
}
const out = [];
for (const sym of symbols.slice(0, sample)) {
  const src = ls.getProgram().getSourceFile(sym.file);
  const line = src.getLineAndCharacterOfPosition(sym.pos).line + 1;
  const refs = [];
  for (const group of ls.findReferences(sym.file, sym.pos) || []) {
    for (const r of group.references) {
      const rf = ls.getProgram().getSourceFile(r.fileName);
      if (!rf || !r.fileName.startsWith(root)) continue;
      refs.push([path.relative(root, r.fileName).split(path.sep).join('/'),
                 rf.getLineAndCharacterOfPosition(r.textSpan.start).line + 1]);
    }
  }
  out.push({name: sym.name, path: path.relative(root, sym.file).split(path.sep).join('/'), line, refs});
}
console.log(JSON.stringify({definitions: symbols.length, symbols: out}));
"""


def ts_corpus(name: str, source: Path, typescript: Path, sample: int, seed: int, verbose: bool) -> list[dict]:  # type: ignore[type-arg]
    root = scratch_copy(source, name)
    seconds = index(root)
    script = SCRATCH / "ts_refs.js"
    script.write_text(TS_SCRIPT)
    module = typescript / "node_modules" / "typescript"
    done = subprocess.run(["node", str(script), str(module), str(root), str(sample), str(seed)], check=True,
                          capture_output=True, text=True)
    data = json.loads(done.stdout)
    graph = GraphService(root)
    rows = []
    for sym in data["symbols"]:
        theirs = {(p, ln) for p, ln in sym["refs"]}
        answer = graph.query(f"{sym['path']}:{sym['line']}", "find_references", max_nodes=500)
        ours = {(r.path, r.start_line) for r in answer.results} if answer.resolution == "resolved" else set()
        hit, n_ours, n_theirs = score(ours, theirs)
        rows.append({"symbol": sym["name"], "hit": hit, "ours": n_ours, "theirs": n_theirs,
                     "missed": sorted(theirs - ours)[:10], "extra": sorted(ours - theirs)[:10]})
        if verbose and ours != theirs:
            print(f"  {sym['name']} ({sym['path']}:{sym['line']}): missed {sorted(theirs - ours)[:6]} "
                  f"extra {sorted(ours - theirs)[:6]}")
    graph.close()
    print(f"  {name}: {data['definitions']} definitions, indexed in {seconds:.1f} s", flush=True)
    return rows


# -- Go and Rust: counts and a sample for checking by hand ------------------------------------------


def counts_corpus(name: str, source: Path, seed: int) -> dict:  # type: ignore[type-arg]
    root = scratch_copy(source, name)
    index(root)
    graph = GraphService(root)
    conn = graph.engine().conn
    stats = {
        "definitions": conn.execute("SELECT COUNT(*) FROM graph_defs").fetchone()[0],
        "references": conn.execute("SELECT COUNT(*) FROM graph_refs").fetchone()[0],
        "calls": conn.execute("SELECT COUNT(*) FROM graph_refs WHERE kind = 'call'").fetchone()[0],
        "imports": conn.execute("SELECT COUNT(*) FROM graph_imports").fetchone()[0],
    }
    defs = [r for r in conn.execute("SELECT path, line, qname FROM graph_defs WHERE kind IN "
                                    "('function', 'method', 'struct', 'trait', 'interface') ORDER BY path, line")]
    sample = random.Random(seed).sample(defs, min(20, len(defs)))
    checks = []
    for path, line, qname in sample:
        answer = graph.query(f"{path}:{line}", "find_references", max_nodes=500)
        checks.append({"symbol": qname, "at": f"{path}:{line}", "resolution": answer.resolution,
                       "exact": sum(r.confidence == "exact" for r in answer.results if r.kind != "definition"),
                       "name": sum(r.confidence == "name" for r in answer.results if r.kind != "definition"),
                       "first": [f"{r.path}:{r.start_line} {r.content[:60]}" for r in answer.results
                                 if r.kind != "definition"][:3],
                       "warnings": answer.warnings})
    graph.close()
    print(f"{name}: {stats}")
    for c in checks:
        print(f"  {c['symbol']:<40} {c['at']:<50} exact {c['exact']:>3} name {c['name']:>3}  {c['first'][:2]}")
    return {"stats": stats, "sample": checks}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("language", choices=["python", "ts", "counts"])
    parser.add_argument("--sample", type=int, default=50)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--corpus", action="append", help="only these corpora (by name)")
    parser.add_argument("--typescript", type=Path, help="folder of `npm install --prefix DIR typescript`")
    parser.add_argument("--json", type=Path, help="write the figures (and per-symbol rows) here")
    parser.add_argument("--verbose", "-v", action="store_true", help="print each symbol whose sets differ")
    args = parser.parse_args()
    out: dict = {}  # type: ignore[type-arg]
    rows_all: list[dict] = []  # type: ignore[type-arg]
    for corpus in corpora():
        if args.corpus and corpus.name not in args.corpus:
            continue
        if args.language == "python" and corpus.pip is not None:
            rows = python_corpus(corpus.name, corpus.prepare(), args.sample, args.seed, args.verbose)
        elif args.language == "ts" and corpus.language in ("javascript", "typescript"):
            if args.typescript is None:
                parser.error("ts needs --typescript DIR (npm install --prefix DIR typescript)")
            rows = ts_corpus(corpus.name, corpus.prepare(), args.typescript, args.sample, args.seed, args.verbose)
        elif args.language == "counts" and corpus.language in ("go", "rust"):
            out[corpus.name] = counts_corpus(corpus.name, corpus.prepare(), args.seed)
            continue
        else:
            continue
        report(corpus.name, rows, out)
        out[corpus.name]["rows"] = rows
        rows_all.extend(rows)
    if rows_all:
        report("all", rows_all, out)
    if args.json is not None:
        args.json.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
