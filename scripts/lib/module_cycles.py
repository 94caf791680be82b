#!/usr/bin/env python3
"""Finds import circles between the modules of each crate.

Layers must run one way: inside every module, its child modules may depend
on one another only without a circle (a -> b -> a, or around a longer
ring). A reference counts when a file names another module's item by a
`crate::` or `super::` path (in a `use` or in code). What is not counted:

- a module naming its own descendants, or a descendant naming its
  ancestors: a `mod.rs` re-exporting its children is a facade, not a layer;
- test code (`#[cfg(test)] mod tests { ... }` blocks and `tests.rs` files),
  which consumes every layer it tests.

Paths relative to the current module without `crate::`/`super::` can only
reach the module's own children, which is the facade case above.

Usage: module_cycles.py CRATE_SRC_DIR...   (exit 1 and a report on a circle)
"""

import re
import sys
from pathlib import Path

IDENT = r"[A-Za-z_][A-Za-z0-9_]*"


def strip_comments_and_strings(text):
    """Blanks out comments, string and char literals, keeping line breaks."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            i = j
        elif text.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if text.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif text.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            out.append("\n" * text.count("\n", i, j))
            i = j
        elif c == "r" and re.match(r'r#*"', text[i:i + 8]) and not re.match(r"[A-Za-z0-9_]", text[i - 1:i] or " "):
            hashes = re.match(r'r(#*)"', text[i:]).group(1)
            end = text.find('"' + hashes, i + len(hashes) + 2)
            end = n if end < 0 else end + 1 + len(hashes)
            out.append('""' + "\n" * text.count("\n", i, end))
            i = end
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append('""' + "\n" * text.count("\n", i, j))
            i = j + 1
        elif c == "'":
            # A char literal ('a', '\n', '\u{1F600}'), not a lifetime ('a).
            m = re.match(r"'(\\u\{[0-9a-fA-F]+\}|\\.|[^\\'])'", text[i:])
            if m:
                out.append("' '")
                i += m.end()
            else:
                out.append(c)
                i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def without_test_modules(code):
    """Removes `#[cfg(test)] mod NAME { ... }` blocks (comments already gone)."""
    while True:
        m = re.search(r"#\[cfg\(test\)\]\s*(pub(\([^)]*\))?\s+)?mod\s+" + IDENT + r"\s*\{", code)
        if not m:
            return code
        depth, j = 1, m.end()
        while j < len(code) and depth:
            depth += {"{": 1, "}": -1}.get(code[j], 0)
            j += 1
        code = code[:m.start()] + "\n" * code.count("\n", m.start(), j) + code[j:]


def module_path(src, file):
    parts = list(file.relative_to(src).with_suffix("").parts)
    if parts[-1] in ("mod", "lib", "main"):
        parts = parts[:-1]
    return tuple(parts)


def expand_use_tree(prefix, tree):
    """`a::{b, c::{d, e}}` after PREFIX -> [prefix+a+b, prefix+a+c+d, ...]."""
    tree = tree.strip()
    m = re.match(r"((?:" + IDENT + r"\s*::\s*)*)\{(.*)\}$", tree, re.S)
    if not m:
        return [prefix + [p.strip() for p in tree.split("::") if p.strip()]]
    head = [p.strip() for p in m.group(1).split("::") if p.strip()]
    inner, parts, depth, current = m.group(2), [], 0, ""
    for ch in inner:
        if ch == "," and depth == 0:
            parts.append(current)
            current = ""
            continue
        depth += {"{": 1, "}": -1}.get(ch, 0)
        current += ch
    parts.append(current)
    paths = []
    for part in parts:
        part = re.sub(r"\s+as\s+" + IDENT + r"\s*$", "", part.strip())
        if part:
            paths.extend(expand_use_tree(prefix + head, part))
    return paths


def referenced_paths(code, here):
    """(line, absolute path) for every crate::/super:: path in CODE of module HERE."""
    found = []
    for m in re.finditer(r"\b((?:crate|super)(?:\s*::\s*(?:super|" + IDENT + r"|\{[^;]*?\}))+)", code):
        line = code.count("\n", 0, m.start()) + 1
        text = m.group(1)
        first, _, rest = text.partition("::")
        segments = []
        base = []
        if first.strip() == "crate":
            base, remainder = [], rest
        else:
            base, remainder = list(here[:-1]), rest
            while re.match(r"\s*super\s*::", remainder):
                base = base[:-1]
                remainder = re.sub(r"^\s*super\s*::", "", remainder, count=1)
        for path in expand_use_tree(base, remainder):
            segments.append(path)
        found.extend((line, tuple(p for p in path if p not in ("self", "*"))) for path in segments)
    return found


def check(src):
    src = Path(src)
    files = sorted(src.rglob("*.rs"))
    modules = {module_path(src, f): f for f in files}
    edges = {}  # (parent, child_a, child_b) -> (file, line)
    for path, file in modules.items():
        if "tests" in path:
            continue
        code = without_test_modules(strip_comments_and_strings(file.read_text()))
        for line, target in referenced_paths(code, path):
            # The longest prefix of the path that is a module.
            while target and target not in modules:
                target = target[:-1]
            if target == path or path[:len(target)] == target or target[:len(path)] == path:
                continue  # itself, an ancestor, or a descendant
            common = 0
            while path[common] == target[common]:
                common += 1
            parent = path[:common]
            key = (parent, path[common], target[common])
            edges.setdefault(key, (file, line))
    graph = {}
    for (parent, a, b) in edges:
        graph.setdefault(parent, {}).setdefault(a, set()).add(b)
    circles = []
    for parent, adjacency in graph.items():
        for component in strongly_connected(adjacency):
            if len(component) > 1:
                circles.append((parent, sorted(component)))
    for parent, component in circles:
        where = "::".join(parent) or "crate root"
        print(f"{src}: modules under {where} import each other in a circle: {', '.join(component)}")
        for (p, a, b), (file, line) in sorted(edges.items()):
            if p == parent and a in component and b in component:
                print(f"  {a} -> {b}  ({file}:{line})")
    return not circles


def strongly_connected(adjacency):
    """Tarjan's algorithm over {node: {successors}}."""
    index, low, stack, on_stack, result, counter = {}, {}, [], set(), [], [0]
    nodes = set(adjacency) | {b for bs in adjacency.values() for b in bs}

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in adjacency.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            result.append(component)

    for v in sorted(nodes):
        if v not in index:
            visit(v)
    return result


if __name__ == "__main__":
    ok = all([check(src) for src in sys.argv[1:]])
    sys.exit(0 if ok else 1)
