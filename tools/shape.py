"""The package's shape: layers, import cycles, module and function sizes.

``python tools/shape.py`` prints every violation of the rules in
docs/architecture.md ("Rules that keep the shape") and exits 1 if there is one;
tests/test_architecture.py asserts the same rules, so the shape stays.

Every import counts: at module level, inside functions, and under
``if TYPE_CHECKING:``, because each is a dependency a reader must follow.

A package may load its public names on first use (PEP 562): a module-level ``_LAZY``
table (name -> submodule) read by the package's ``__getattr__``. Those imports happen
through ``importlib``, which this checker cannot follow, so every submodule the table
names must also be imported under ``if TYPE_CHECKING:`` in the same ``__init__.py``:
the layer and cycle rules then see the dependency, and ``lazy:`` reports one they
would miss (tests/test_lazy_packages.py checks the names agree).
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "mlspec_attest"

#: Layers, lowest first. A module may import its own layer and the layers below it,
#: never one above. The first matching prefix decides a module's layer.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("_version", "errors"),
    ("formats",),
    ("store",),
    ("digest",),
    ("signing",),
    ("evidence",),
    ("policy",),
    ("attestation",),
    ("verify",),
    ("interop",),
    ("log",),
    ("serve",),
    ("api",),
    ("integrations",),
    ("cli", "__init__", "__main__"),
)
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60
MAX_ROOT_MODULES = 5
MAX_FUNCTION_IMPORTS = 15
#: Third-party packages only one subpackage may import.
CONFINED = {
    "click": "cli",
    "rich": "cli",
    "starlette": "serve",
    "uvicorn": "serve",
    "prometheus_client": "serve",
    "cbor2": "log",
    "airflow": "integrations",
    "prefect": "integrations",
    "kfp": "integrations",
    "mlflow": "integrations",
}
#: Modules the package does not import at all, and what it uses instead.
REPLACED = {
    "dataclasses": "declare value types as msgspec.Struct: a frozen dataclass takes about "
    "1 ms to create on Python 3.11, and a command loads dozens before it starts",
}


@dataclass
class Module:
    name: str  # dotted, without the package prefix ("" for the package itself)
    path: Path
    tree: ast.Module
    lines: int
    imports: set[str] = field(default_factory=set)  # package modules, without prefix
    lazy: set[str] = field(default_factory=set)  # the submodules a ``_LAZY`` table names
    function_imports: list[tuple[int, str]] = field(default_factory=list)
    third_party: set[str] = field(default_factory=set)


def module_name(path: Path) -> tuple[str, bool]:
    parts = list(path.relative_to(ROOT / PACKAGE).with_suffix("").parts)
    is_package = parts[-1] == "__init__"
    if is_package:
        parts = parts[:-1]
    return ".".join(parts), is_package


def load_modules() -> dict[str, Module]:
    modules = {}
    for path in sorted((ROOT / PACKAGE).rglob("*.py")):
        name, _ = module_name(path)
        text = path.read_text(encoding="utf-8")
        modules[name] = Module(name, path, ast.parse(text), len(text.splitlines()))
    for module in modules.values():
        collect_imports(module, modules)
    return modules


def absolute(module: Module, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    _, is_package = module_name(module.path)
    base = [PACKAGE, *module.name.split(".")] if module.name else [PACKAGE]
    if not is_package:
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def targets(module: Module, node: ast.stmt, known: dict[str, Module]) -> Iterator[str]:
    """The package modules (or third-party top-level names, prefixed '!') an import names."""
    if isinstance(node, ast.Import):
        for alias in node.names:
            yield from internal(alias.name, known)
    elif isinstance(node, ast.ImportFrom):
        base = absolute(module, node)
        if base != PACKAGE and not base.startswith(PACKAGE + "."):
            yield "!" + base.split(".")[0]
            return
        for alias in node.names:
            sub = f"{base}.{alias.name}"
            yield from internal(sub if sub.removeprefix(PACKAGE + ".") in known else base, known)


def internal(dotted: str, known: dict[str, Module]) -> Iterator[str]:
    if dotted != PACKAGE and not dotted.startswith(PACKAGE + "."):
        yield "!" + dotted.split(".")[0]
        return
    name = dotted.removeprefix(PACKAGE).removeprefix(".")
    while name not in known and "." in name:
        name = name.rsplit(".", 1)[0]
    yield name if name in known else ""


def lazy_table(module: Module) -> set[str]:
    """The package modules a module-level ``_LAZY = {name: submodule}`` table names."""
    for node in module.tree.body:
        target = node.target if isinstance(node, ast.AnnAssign) else None
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
        if isinstance(target, ast.Name) and target.id == "_LAZY" and node.value is not None:
            table = ast.literal_eval(node.value)
            return {f"{module.name}.{sub}".lstrip(".") for sub in table.values()}
    return set()


def collect_imports(module: Module, known: dict[str, Module]) -> None:
    module.lazy = lazy_table(module)
    top_level = set(map(id, module_level_imports(module.tree)))
    for node in ast.walk(module.tree):
        if not isinstance(node, ast.Import | ast.ImportFrom):
            continue
        for target in targets(module, node, known):
            if target.startswith("!"):
                module.third_party.add(target[1:])
                continue
            if target == module.name:
                continue
            module.imports.add(target)
            if id(node) not in top_level:
                module.function_imports.append((node.lineno, target))


def module_level_imports(tree: ast.Module) -> Iterator[ast.stmt]:
    """Imports at module level, including under ``if TYPE_CHECKING:`` and ``try:``."""
    stack: list[ast.stmt] = list(tree.body)
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif isinstance(node, ast.If | ast.Try):
            stack.extend(node.body)
            stack.extend(node.orelse)
            if isinstance(node, ast.Try):
                for handler in node.handlers:
                    stack.extend(handler.body)


def layer(name: str) -> int:
    head = name.split(".")[0] if name else "__init__"
    for rank, prefixes in enumerate(LAYERS):
        if head in prefixes:
            return rank
    raise LookupError(f"{PACKAGE}.{name} is in no layer: add its folder to tools/shape.py")


def cycles(modules: dict[str, Module]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(modules[v].imports):
            if w not in modules or w == "":
                continue
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
            if len(component) > 1:
                found.append(sorted(component))

    # A few hundred modules deep at most: well within the default recursion limit, which
    # is left alone (changing it would change how other code in the process behaves).
    for v in sorted(modules):
        if v not in index:
            visit(v)
    return found


def package_parents(name: str) -> set[str]:
    """A module imports its parent packages implicitly; those edges are not cycles."""
    parts = name.split(".")
    return {".".join(parts[:i]) for i in range(len(parts))}


def long_functions(module: Module) -> Iterator[tuple[str, int]]:
    for node in ast.walk(module.tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            if length > MAX_FUNCTION_LINES:
                yield f"{node.name}:{node.lineno}", length


@dataclass(frozen=True, order=True)
class Violation:
    """One broken rule: ``key`` is stable across edits (no line numbers), ``detail`` is not."""

    key: str
    detail: str


def violations(modules: dict[str, Module]) -> list[Violation]:
    found = [*layer_violations(modules), *size_violations(modules)]
    for component in cycles(strip_parents(modules)):
        names = " <-> ".join(f"{PACKAGE}.{m}" for m in component)
        found.append(Violation(f"cycle: {names}", "an import cycle"))
    roots = sorted(
        m for m in modules if m and "." not in m and modules[m].path.name != "__init__.py"
    )
    if len(roots) > MAX_ROOT_MODULES:
        found.append(
            Violation("root", f"{len(roots)} modules in {PACKAGE}/ (> {MAX_ROOT_MODULES}): {roots}")
        )
    return sorted(found)


def layer_violations(modules: dict[str, Module]) -> Iterator[Violation]:
    for name, module in sorted(modules.items()):
        where = module.path.relative_to(ROOT)
        for target in sorted(module.lazy - module.imports):
            yield Violation(
                f"lazy: {where} -> {PACKAGE}.{target}",
                "a _LAZY table entry with no import under `if TYPE_CHECKING:`",
            )
        for target in sorted(module.imports - package_parents(name)):
            if target and layer(target) > layer(name):
                yield Violation(f"layer: {where} -> {PACKAGE}.{target}", "imports a layer above it")
        for third, home in CONFINED.items():
            if third in module.third_party and name.split(".")[0] != home:
                yield Violation(f"confined: {where} -> {third}", f"only {home}/ may import {third}")
        for banned, instead in REPLACED.items():
            if banned in module.third_party:
                yield Violation(f"replaced: {where} -> {banned}", instead)


def size_violations(modules: dict[str, Module]) -> Iterator[Violation]:
    for module in modules.values():
        where = module.path.relative_to(ROOT)
        if module.lines > MAX_MODULE_LINES:
            yield Violation(f"module: {where}", f"{module.lines} lines (> {MAX_MODULE_LINES})")
        for function, length in long_functions(module):
            name, line = function.rsplit(":", 1)
            yield Violation(
                f"function: {where}::{name}",
                f"line {line}: {length} lines (> {MAX_FUNCTION_LINES})",
            )


def function_imports(modules: dict[str, Module]) -> list[str]:
    """Every in-function import of the package's own modules, as ``path:line -> module``."""
    return sorted(
        f"{m.path.relative_to(ROOT)}:{line} -> {PACKAGE}.{target}"
        for m in modules.values()
        for line, target in m.function_imports
    )


def strip_parents(modules: dict[str, Module]) -> dict[str, Module]:
    out = {}
    for name, module in modules.items():
        copy = Module(module.name, module.path, module.tree, module.lines)
        copy.imports = {t for t in module.imports if t and t not in package_parents(name)}
        out[name] = copy
    return out


def main() -> int:
    modules = load_modules()
    found = violations(modules)
    for v in found:
        print(f"{v.key}  ({v.detail})")
    inside = function_imports(modules)
    print(
        f"{len(inside)} in-function imports of the package's own modules (limit {MAX_FUNCTION_IMPORTS})"
    )
    if "-v" in sys.argv:
        print("".join(f"    {line}\n" for line in inside), end="")
    print(f"{len(found)} violation(s)", file=sys.stderr)
    return 1 if found or len(inside) > MAX_FUNCTION_IMPORTS else 0


if __name__ == "__main__":
    sys.exit(main())
