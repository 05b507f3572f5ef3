"""The one YAML loader of stacklet: stack.yaml, fault profiles and Compose files are read through it.

PyYAML's safe loader (its C implementation when installed, 3-60x faster) with the limits hostile
input needs: text must be UTF-8, a key may appear once per mapping, aliases may not expand a
document beyond a bound (a "billion laughs" file is refused before anything walks it), nesting
and integers are bounded. Every refusal is the caller's ConfigError naming the file, the key
(where there is one), the line and the bound.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from stacklet.errors import ConfigError, short_repr

MAX_DEPTH = 64                # nesting levels; real stack.yaml and Compose files stay under 15
MAX_ALIAS_EXPANSION = 10_000  # nodes that aliases add to a document when expanded
MAX_INTEGER_DIGITS = 100
MAX_FILE_BYTES = 16 * 1024 * 1024

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_INT_TAG = "tag:yaml.org,2002:int"
_MERGE_TAG = "tag:yaml.org,2002:merge"


class _Refused(Exception):
    """A limit this module enforces, with the node it was found at."""

    def __init__(self, message: str, node: Node, key: str | None, hint: str):
        super().__init__(message)
        self.node = node
        self.key = _short_path(key)
        self.hint = hint


_NESTING_HINT = "write the value out, without deep nesting or aliases that multiply it"


def load_yaml_file(path: Path, error: type[ConfigError], expected: str | None = None) -> Any:
    """Parse the YAML file at ``path`` within the limits above; refusals raise ``error`` naming the file.

    With ``expected`` (e.g. "a mapping with `toxics:`"), a document that is not a mapping is refused too.
    """
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise error(f"cannot read: {exc.strerror}", file=str(path)) from exc
    if len(raw) > MAX_FILE_BYTES:
        raise error(f"is {len(raw)} bytes, more than the {MAX_FILE_BYTES} a stacklet file may have", file=str(path))
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise error(f"is not UTF-8 text (byte 0x{raw[exc.start]:02x} at line {line})", file=str(path),
                    hint="save the file as UTF-8") from None
    data = load_yaml_text(text, path, error)
    if expected is not None and not isinstance(data, dict):
        raise error(f"must be {expected}", file=str(path))
    return data


def load_yaml_text(text: str, path: Path, error: type[ConfigError]) -> Any:
    """Parse YAML ``text`` read from ``path`` (named in errors) within the limits above."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_tree(node)
        return loader.construct_document(node)
    except _Refused as refused:
        line = refused.node.start_mark.line + 1
        raise error(f"{refused} at line {line}", file=str(path), key=refused.key, hint=refused.hint) from None
    except RecursionError:
        raise error(f"nests deeper than {MAX_DEPTH} levels", file=str(path), hint="flatten the document") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise error(f"is not valid YAML{where}: {short_repr(problem)[1:-1]}", file=str(path),
                    hint="check indentation and quoting") from None
    finally:
        loader.dispose()


def scalar_texts(text: str) -> list[str]:
    """The scalar values of a YAML text as written (comments skipped, aliases not expanded); [] if it is not YAML.

    Read from the token stream, so this is linear in the text and needs no limits on what the document means.
    """
    loader = _Loader(text)
    found: list[str] = []
    try:
        while loader.check_token():
            token = loader.get_token()
            if isinstance(token, yaml.ScalarToken):
                found.append(token.value)
    except yaml.YAMLError:
        return []
    finally:
        loader.dispose()
    return found


def check_nesting(data: Any, path: Path, error: type[ConfigError]) -> None:
    """Refuse parsed data (e.g. Compose's JSON) nested deeper than MAX_DEPTH; iterative, so never a RecursionError."""
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise error(f"nests deeper than {MAX_DEPTH} levels", file=str(path), hint="flatten the document")
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))


def _check_tree(root: Node) -> None:
    """Refuse nesting beyond MAX_DEPTH, a key twice in one mapping, and aliases expanding beyond the bound.

    An alias is the same node object met again: each node's expanded size and height are computed once
    (memoised), so a bomb is measured without being expanded; a node that contains itself is too deep.
    """
    measured: dict[int, tuple[int, int]] = {}  # id(node) -> (expanded size, height)

    def measure(node: Node, depth: int, path: str) -> tuple[int, int]:
        known = measured.get(id(node))
        if known is not None:
            return known
        if depth > MAX_DEPTH:
            raise _Refused(f"nests deeper than {MAX_DEPTH} levels", node, path or None, _NESTING_HINT)
        if node.tag == _INT_TAG and len(node.value) > MAX_INTEGER_DIGITS:
            raise _Refused(f"an integer of {len(node.value)} characters (at most {MAX_INTEGER_DIGITS})", node,
                           path or None, "use a smaller number")
        children: list[tuple[Node, str]] = []
        if isinstance(node, SequenceNode):
            children = [(item, f"{path}.{index}" if path else str(index)) for index, item in enumerate(node.value)]
        elif isinstance(node, MappingNode):
            seen: dict[tuple[str, str], Node] = {}
            for key, value in node.value:
                name = str(key.value)[:40] if isinstance(key, ScalarNode) else None
                child = f"{path}.{name}" if path and name is not None else (name or path)
                if name is not None and key.tag != _MERGE_TAG:
                    first = seen.setdefault((key.tag, key.value), key)
                    if first is not key:
                        raise _Refused(f"key {short_repr(key.value)} appears twice (first at line "
                                       f"{first.start_mark.line + 1})", key, child,
                                       "remove one of them: YAML would silently keep only the last")
                children += [(key, path), (value, child)]
        size, height = 1, 1
        for child_node, child_path in children:
            child_size, child_height = measure(child_node, depth + 1, child_path)
            size, height = size + child_size, max(height, child_height + 1)
        if height > MAX_DEPTH:
            raise _Refused(f"nests deeper than {MAX_DEPTH} levels (through aliases)", node, path or None,
                           _NESTING_HINT)
        if size - len(measured) > MAX_ALIAS_EXPANSION:
            raise _Refused(f"aliases expand the document beyond {MAX_ALIAS_EXPANSION} extra nodes", node,
                           path or None, _NESTING_HINT)
        measured[id(node)] = (size, height)
        return size, height

    measure(root, 1, "")


def _short_path(key: str | None, parts: int = 8) -> str | None:
    """A dotted key path cut to its first ``parts`` parts, so a deep or cyclic document names a short key."""
    if key is None:
        return None
    names = key.split(".")
    return key if len(names) <= parts else ".".join(names[:parts]) + ".…"
