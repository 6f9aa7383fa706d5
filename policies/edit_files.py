"""The policy files of one revision, edited in place entry by entry, each edit verified.

Every edit is checked against the data it should produce: the new text is parsed again and
compared with the old data plus the intended change. If the surgical splice does not give
exactly that (an unusual layout), the edit falls back to a ruamel.yaml round trip of the
whole file, which keeps comments and order but may reformat it; if even that does not
match, the edit is refused rather than written wrong.
"""

from __future__ import annotations

import codecs
import datetime as dt
import io
from collections.abc import Mapping, Sequence
from typing import Any

import yaml_rs
from ruamel.yaml import YAML
from ruamel.yaml.util import load_yaml_guess_indent

from policies import yaml_edit
from policies.check import policy_subset
from policies.problems import PolicyRepoError
from policies.yaml_edit import YamlEditError

KeyPlace = tuple[str, int]
"""(file, index in its `keys:` list)."""


class EditRefused(PolicyRepoError):
    """The edit cannot be made as asked (unknown id, duplicate id, nothing to commit...)."""


class EditFailed(PolicyRepoError):
    """A file's layout defeats both the in-place edit and the round trip."""


class EditedFiles:
    """The original policy files and their edited texts."""

    def __init__(self, tree: Mapping[str, bytes]) -> None:
        self._original = policy_subset(tree)
        self._texts: dict[str, str] = {}

    # reading ------------------------------------------------------------------------------

    def current(self) -> dict[str, bytes]:
        files = dict(self._original)
        for path, text in self._texts.items():
            files[path] = _encode(text, self._original.get(path, b""))
        return files

    def policy_files(self) -> dict[str, bytes]:
        return self.current()

    def original_policy_files(self) -> dict[str, bytes]:
        return dict(self._original)

    def changed(self) -> list[str]:
        current = self.current()
        return sorted(p for p in current if current[p] != self._original.get(p))

    def find_key(self, key_id: str) -> KeyPlace | None:
        for path in self._keys_files():
            keys = (_load(self._text(path)) or {}).get("keys") or []
            for index, entry in enumerate(keys if isinstance(keys, list) else []):
                if isinstance(entry, dict) and entry.get("id") == key_id:
                    return path, index
        return None

    # edits --------------------------------------------------------------------------------

    def append_key(self, file: str | None, entry: dict[str, Any]) -> None:
        path = file or self._role("keys") or "keys.yaml"
        self._edit(path, "append", ["keys"], entry)

    def update_key(self, key_id: str, changes: dict[str, Any]) -> None:
        path, index = self._key(key_id)
        self._edit(path, "set", ["keys", index], changes)
        entry = _load(self._text(path))["keys"][index]
        if entry.get("limits") == {}:  # every override removed: drop the empty mapping
            self._edit(path, "delete", ["keys", index, "limits"], None)

    def remove_key(self, key_id: str) -> None:
        path, index = self._key(key_id)
        self._edit(path, "delete", ["keys", index], None)

    def set_tier(self, name: str | None, limits: dict[str, int] | None) -> None:
        """Replace a tier's limits (None: remove the tier); `name` None is the default."""
        path = self._role("limits") or "limits.yaml"
        where = ["default"] if name is None else ["tiers", name]
        if limits is None:
            self._edit(path, "delete", where, None)
            return
        existing = _walk(_load(self._text(path)), where)
        old = existing if isinstance(existing, dict) else {}
        self._edit(path, "set", where, {**dict.fromkeys(old, ...), **limits} or {})

    def set_route(self, name: str, fields: dict[str, Any] | None) -> None:
        """Set the given fields of a route (`...` removes one), keeping the others; a new
        route is created and needs `targets`. None removes the route."""
        path = self._role("routes") or "routes.yaml"
        if fields is None:
            self._edit(path, "delete", ["routes", name], None)
            return
        existing = _walk(_load(self._text(path)), ["routes", name])
        if isinstance(existing, dict):
            if fields:  # setting an empty mapping would replace the route, not merge into it
                self._edit(path, "set", ["routes", name], fields)
            return
        new = {field: value for field, value in fields.items() if value is not ...}
        if "targets" not in new:
            raise EditRefused(
                f"there is no route '{name}' to change: give targets to create it "
                "(e.g. openai/gpt-4o-mini)"
            )
        self._edit(path, "set", ["routes", name], new)

    def set_team(self, name: str, fields: dict[str, Any] | None, *, create: bool = False) -> None:
        """Set the given fields of a team in teams.yaml (`...` removes one, `limits` merges
        field by field), keeping the others. With `create`, the team must be new; else it
        must exist. None removes the team."""
        path = self._role("teams") or "teams.yaml"
        where = ["teams", name]
        if fields is None:
            self._edit(path, "delete", where, None)
            return
        existing = _walk(_load(self._text(path)), where)
        if create and existing is not None:
            raise EditRefused(f"a team named '{name}' exists already: choose another name")
        if not create and not isinstance(existing, dict):
            raise EditRefused(f"no team named '{name}' in {path}: create it first")
        if not create and not fields:
            return  # an empty mapping would replace the team, not merge into it
        self._edit(path, "set", where, fields)
        team = _walk(_load(self._text(path)), where)
        if isinstance(team, dict) and team.get("limits") == {}:  # every limit removed
            self._edit(path, "delete", [*where, "limits"], None)

    # internals ----------------------------------------------------------------------------

    def _key(self, key_id: str) -> KeyPlace:
        place = self.find_key(key_id)
        if place is None:
            raise EditRefused(f"no key with id '{key_id}': `modelgate keys list` shows them")
        return place

    def _keys_files(self) -> list[str]:
        main = self._role("keys")
        rest = sorted(p for p in self.current() if p.startswith("keys/"))
        return ([main] if main else []) + rest

    def _role(self, stem: str) -> str | None:
        return next((p for p in sorted(self.current()) if p.rsplit(".", 1)[0] == stem), None)

    def _text(self, path: str) -> str:
        if path in self._texts:
            return self._texts[path]
        return self._original.get(path, b"").decode("utf-8-sig")

    def _edit(self, path: str, kind: str, where: Sequence[str | int], value: Any) -> None:
        text = self._text(path)
        expected = _apply(_load(text), kind, where, _plain(value))
        try:
            new: str | None = _surgical(text, kind, where, value)
        except YamlEditError:
            new = None
        if new is None or _load(new) != expected:
            new = _round_trip(text, kind, where, _plain(value))
            if _load(new) != expected:
                raise EditFailed(
                    f"could not edit {path} safely (its layout is unusual): make this change "
                    "by hand, then run `modelgate policy check`"
                )
        self._texts[path] = new


def _surgical(text: str, kind: str, where: Sequence[str | int], value: Any) -> str:
    if kind == "set":
        return yaml_edit.set_value(text, where, value)
    if kind == "append":
        return yaml_edit.append(text, where, value)
    return yaml_edit.delete(text, where)


def _round_trip(text: str, kind: str, where: Sequence[str | int], value: Any) -> str:
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096
    if text.strip():
        _, indent, offset = load_yaml_guess_indent(text)
        yaml.indent(mapping=indent or 2, sequence=(indent or 2) + (offset or 0), offset=offset or 0)
    data = yaml.load(text) if text.strip() else None
    data = _apply(data, kind, where, value)
    out = io.StringIO()
    yaml.dump(data, out)
    return out.getvalue()


def _apply(data: Any, kind: str, where: Sequence[str | int], value: Any) -> Any:
    """`data` with the change made: what the edited text must parse to."""
    if data is None:
        data = {}
    parent = data
    for part in where[:-1]:
        child = parent[part] if _has(parent, part) else None
        if child is None:
            child = {}
            parent[part] = child
        parent = child
    last = where[-1]
    if kind == "delete":
        if _has(parent, last):
            del parent[last]
    elif kind == "append":
        if not _has(parent, last) or parent[last] is None:
            parent[last] = []
        parent[last].append(_without_deletions(value))
    else:
        current = parent[last] if _has(parent, last) else None
        if isinstance(current, dict) and isinstance(value, dict) and value:
            for name, item in value.items():
                _apply(current, "delete" if item is ... else "set", [name], item)
        else:
            parent[last] = _without_deletions(value)
    return data


def _has(container: Any, part: str | int) -> bool:
    if isinstance(part, int):
        return isinstance(container, list) and 0 <= part < len(container)
    return isinstance(container, dict) and part in container


def _without_deletions(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_deletions(v) for k, v in value.items() if v is not ...}
    return value


def _plain(value: Any) -> Any:
    """As yaml_rs reads it back: dates as ISO strings, tuples as lists."""
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _walk(data: Any, where: Sequence[str | int]) -> Any:
    for part in where:
        if not _has(data, part):
            return None
        data = data[part]
    return data


def _load(text: str) -> Any:
    if not text.strip():
        return None
    return yaml_rs.loads(text, parse_datetime=False)


def _encode(text: str, original: bytes) -> bytes:
    bom = codecs.BOM_UTF8 if original.startswith(codecs.BOM_UTF8) else b""
    return bom + text.encode("utf-8")
