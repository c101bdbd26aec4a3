"""The layout's rules, read from the source (no module is imported): imports point down the flows.

``recording_pipeline`` has shared leaves at its top (settings, clients, ids, ...) and one
subpackage per flow. Entry points (``function_app.py``, ``scripts/``) may import anything; a flow
imports itself, the flows it is built on and the shared leaves; a shared leaf imports only other
leaves. So ``archive/`` never imports ``api/``, and the API reaches the archive only through the
registry or the leaves. Outside the function code: the ``recordings`` CLI talks to the API over
HTTP only, the local runtime never imports an entry point, the local stack never imports the
demo that runs on it, and the emulator never imports the code it stands in for (the end-to-end
tests mean something only while the two are independent). Nothing imports ``functions.`` as a
package: ``functions/`` is the app's root in Azure, so such an import works only locally and gives
a second copy of every module. ``importlib.import_module`` and ``__import__`` with a literal name
count as imports. A second check keeps the registry's property names in its schema module.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
FUNCTIONS = REPO_ROOT / "functions"
PIPELINE = "recording_pipeline"
LEAVES = "leaves"  # the top-level modules of recording_pipeline

#: What each part of recording_pipeline may import besides itself.
ALLOWED = {
    LEAVES: set(),
    "registry": {LEAVES},
    "events_out": {"registry", LEAVES},
    "archive": {"registry", "events_out", LEAVES},
    "api": {"registry", LEAVES},
    "operations": {"archive", "registry", "events_out", LEAVES},
    "reconcile": {"archive", "registry", "events_out", LEAVES},
}
#: Top-level packages outside functions/ and what they must never import.
FORBIDDEN_OUTSIDE = {
    "recordings_cli": {PIPELINE, "local_runtime", "scripts", "emulator", "infra", "tests"},
    "local_runtime": {"scripts", "tests", "infra", "recordings_cli"},
    "emulator": {PIPELINE, "function_app", "local_runtime", "recordings_cli", "scripts", "tests"},
}
#: Where first-party code lives; none of it may import ``functions`` as a package.
CODE_ROOTS = (
    "functions",
    "local_runtime",
    "recordings_cli",
    "scripts",
    "emulator",
    "infra",
    "policy",
)
#: Single modules that must not import one another (module -> what it must not import).
FORBIDDEN_MODULES = {"local_runtime.stack": {"local_runtime.demo"}}
FIRST_PARTY = {
    PIPELINE,
    "functions",
    "function_app",
    "local_runtime",
    "recordings_cli",
    "scripts",
    "emulator",
    "infra",
    "policy",
    "tests",
}


@dataclass(frozen=True)
class Import:
    module: str  # the importing module, dotted
    target: str  # the imported module (or name), dotted
    line: int


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _dynamic_import(node: ast.AST) -> str | None:
    """The literal module name of ``importlib.import_module("x")`` or ``__import__("x")``."""
    if not isinstance(node, ast.Call) or not node.args:
        return None
    func = node.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
    first = node.args[0]
    if name in {"import_module", "__import__"} and isinstance(first, ast.Constant):
        return first.value if isinstance(first.value, str) else None
    return None


def imports_of(path: Path, root: Path) -> Iterator[Import]:
    """Every first-party import in the file, wherever it is (functions, TYPE_CHECKING blocks),
    dynamic imports of a literal name included."""
    module = module_name(path, root)
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if (dynamic := _dynamic_import(node)) is not None:
            targets = [dynamic]
        elif isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the importing package
                package = module.split(".")
                if path.name != "__init__.py":
                    package = package[:-1]
                base = ".".join(package[: len(package) - node.level + 1])
                prefix = f"{base}.{node.module}" if node.module else base
            else:
                prefix = node.module or ""
            targets = [f"{prefix}.{alias.name}" for alias in node.names]
        else:
            continue
        for target in targets:
            if target.split(".")[0] in FIRST_PARTY:
                yield Import(module, target, node.lineno)


def pipeline_part(dotted: str) -> str:
    """``api``, ``archive``, ... for a module of a flow subpackage; ``leaves`` for the rest."""
    parts = dotted.split(".")
    if len(parts) >= 2 and (FUNCTIONS / PIPELINE / parts[1]).is_dir():
        return parts[1]
    return LEAVES


def python_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.py") if "__pycache__" not in p.parts)


def violations() -> list[str]:
    found: list[str] = []
    for path in python_files(FUNCTIONS / PIPELINE):
        for imp in imports_of(path, FUNCTIONS):
            where = f"{path.relative_to(REPO_ROOT)}:{imp.line}: {imp.module} imports {imp.target}"
            top = imp.target.split(".")[0]
            if top == "functions":
                continue  # reported once, by functions_package_imports()
            if top != PIPELINE:
                found.append(f"{where} (the function code imports nothing outside its package)")
                continue
            if imp.target == PIPELINE:
                continue
            source, target = pipeline_part(imp.module), pipeline_part(imp.target)
            if source not in ALLOWED:
                found.append(f"{where} (classify the new part {source!r} in ALLOWED)")
            elif target != source and target not in ALLOWED[source]:
                allowed = ", ".join(sorted({source} | ALLOWED[source]))
                found.append(f"{where} ({source} may import only {allowed})")
    for package, forbidden in FORBIDDEN_OUTSIDE.items():
        for path in python_files(REPO_ROOT / package):
            for imp in imports_of(path, REPO_ROOT):
                if imp.target.split(".")[0] in forbidden:
                    found.append(
                        f"{path.relative_to(REPO_ROOT)}:{imp.line}: {imp.module} imports "
                        f"{imp.target} ({package} never imports {sorted(forbidden)})"
                    )
    for module, forbidden_modules in FORBIDDEN_MODULES.items():
        path = REPO_ROOT / (module.replace(".", "/") + ".py")
        for imp in imports_of(path, REPO_ROOT):
            if any(imp.target == m or imp.target.startswith(m + ".") for m in forbidden_modules):
                found.append(
                    f"{path.relative_to(REPO_ROOT)}:{imp.line}: {module} imports {imp.target}"
                    " (the stack knows nothing of what runs on it)"
                )
    return found


def functions_package_imports() -> list[str]:
    return [
        f"{path.relative_to(REPO_ROOT)}:{imp.line}: {imp.module} imports {imp.target}"
        " (import recording_pipeline or function_app directly: functions/ is the app's root)"
        for root in CODE_ROOTS
        for path in python_files(REPO_ROOT / root)
        for imp in imports_of(path, REPO_ROOT / "functions" if root == "functions" else REPO_ROOT)
        if imp.target == "functions" or imp.target.startswith("functions.")
    ]


def test_imports_point_down_the_flows_and_into_the_shared_leaves() -> None:
    assert violations() == []


def test_nothing_imports_the_functions_folder_as_a_package() -> None:
    assert functions_package_imports() == []


def test_every_part_of_the_pipeline_is_classified() -> None:
    parts = {p.name for p in (FUNCTIONS / PIPELINE).iterdir() if (p / "__init__.py").exists()}
    assert parts == set(ALLOWED) - {LEAVES}


def test_the_registry_property_names_are_spelled_only_in_its_schema() -> None:
    """Every writer and reader of the registry table takes its names from ``registry.schema``."""
    schema = FUNCTIONS / PIPELINE / "registry" / "schema.py"
    names = {
        node.value.value
        for node in ast.parse(schema.read_text()).body
        if isinstance(node, ast.Assign)
        and all(isinstance(t, ast.Name) and t.id.isupper() for t in node.targets)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
        and node.value.value[:1].isupper()
    }
    assert {"PartitionKey", "ArchiveStatus", "ParticipantId", "PoisonedAt"} <= names
    spelled = [
        f"{path.relative_to(REPO_ROOT)}:{line}: {text!r}"
        for root in (FUNCTIONS, REPO_ROOT / "local_runtime", REPO_ROOT / "scripts")
        for path in python_files(root)
        if path != schema
        for line, text in registry_names_spelled(ast.parse(path.read_text()), names)
    ]
    assert spelled == []


def _folded(node: ast.AST) -> str | None:
    """A string built from literals only (``"Archive" + "Status"``, ``"%sAt" % "x"``)."""
    if isinstance(node, ast.Constant):
        return node.value if isinstance(node.value, str) else None
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add | ast.Mod):
        left, right = _folded(node.left), _folded(node.right)
        if left is None or right is None:
            return None
        if isinstance(node.op, ast.Add):
            return left + right
        try:
            return left % right
        except (TypeError, ValueError):
            return None
    return None


def registry_names_spelled(tree: ast.AST, names: set[str]) -> Iterator[tuple[int, str]]:
    """Registry names written as a string (folded from literals) or inside an OData filter
    (a literal or the literal part of an f-string: ``f"ArchiveStatus eq '{x}'"``)."""
    odata = re.compile(
        r"\b(" + "|".join(map(re.escape, sorted(names))) + r")\s+(eq|ne|gt|ge|lt|le)\b"
    )
    for node in ast.walk(tree):
        text = _folded(node)
        if text is not None and (text in names or odata.search(text)):
            yield node.lineno, text
        elif isinstance(node, ast.JoinedStr):
            literal = "".join(v.value for v in node.values if isinstance(v, ast.Constant))
            if odata.search(literal):
                yield node.lineno, literal
