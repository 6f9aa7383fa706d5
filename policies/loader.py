"""Load one revision of the policy repository into a validated `Policy`, or say what is wrong.

Fast path: yaml_rs (YAML 1.2, in Rust) and pydantic. Only a file that fails is read again
for positions (policies.yaml_positions), so a valid 10,000-key commit never pays for line
numbers. Every problem is reported, each as `file:line:col: message`.

Input is bounded before any parse (policies.bounds: size and count; yaml_rs refuses deep
nesting and alias bombs itself), and the position pass stops at the same bounds.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml_rs
from pydantic import BaseModel, TypeAdapter, ValidationError
from pydantic_core import ErrorDetails

from credentials.refs import UNRESTRICTED, AllowedRefs
from policies.alerts import AlertsFile
from policies.alerts_check import alert_issues
from policies.allowed_refs import refused_refs
from policies.bounds import MAX_ALIAS_EVENTS, out_of_bounds
from policies.crosscheck import Loc, Parsed, cross_check
from policies.error_messages import collapse_unions, reword
from policies.models import (
    Key,
    KeysFile,
    LimitsFile,
    Policy,
    PricesFile,
    ProvidersFile,
    RoutesFile,
    TeamsFile,
)
from policies.prices import price_issues
from policies.problems import PolicyInvalid, PolicyRepoError, Problem, RevisionNotFound
from policies.repo import open_repo, read_policy_files, resolve
from policies.yaml_positions import Finding, SourceMap, YamlSyntaxError

__all__ = [
    "PolicyInvalid",
    "PolicyRepoError",
    "Problem",
    "RevisionNotFound",
    "load_policy",
    "load_policy_at",
]

FILE_MODELS: dict[str, type[BaseModel]] = {
    "providers": ProvidersFile,
    "routes": RoutesFile,
    "limits": LimitsFile,
    "keys": KeysFile,
    "prices": PricesFile,
    "teams": TeamsFile,
    "alerts": AlertsFile,
}
KEY_CHUNK = 500
"""Keys validated per pydantic call: each call holds the GIL, the serving loop waits."""

_FILE_NAMES = (
    "providers.yaml, routes.yaml, limits.yaml, teams.yaml, prices.yaml, alerts.yaml, keys.yaml "
    "and keys/*.yaml"
)
_LAST_WINS = yaml_rs.DuplicateKeyPolicy.LastWins
_ALIAS_LIMITS = yaml_rs.AliasLimits(max_total_replayed_events=MAX_ALIAS_EVENTS)
_KEY_LIST = TypeAdapter(list[Key])
_M = TypeVar("_M", bound=BaseModel)


def load_policy(files: Mapping[str, bytes], allowed: AllowedRefs = UNRESTRICTED) -> Policy:
    """The policy in `files` (path -> content); raises PolicyInvalid listing every problem.

    `allowed`: the credential references the operator lends to policies (the default: any
    environment variable, and files inside the credentials directory).
    """
    oversized = out_of_bounds(files)
    if oversized:
        raise PolicyInvalid(oversized)
    sources = _Sources(files)
    problems: list[Problem] = []
    layout = _Layout(files, problems)
    providers = _load(sources, layout.single("providers"), ProvidersFile, problems)
    routes = _load(sources, layout.single("routes"), RoutesFile, problems)
    limits = _load(sources, layout.single("limits"), LimitsFile, problems)
    teams = _load(sources, layout.single("teams"), TeamsFile, problems)
    keys = [(name, _load(sources, name, KeysFile, problems)) for name in layout.keys_files()]
    prices = _load(sources, layout.single("prices"), PricesFile, problems)
    alerts = _load(sources, layout.single("alerts"), AlertsFile, problems)
    if layout.single("routes") is None:
        message = "routes.yaml is missing: add it with a top-level 'routes:' mapping"
        problems.append(Problem("routes.yaml", 1, 1, message + " (every other file is optional)"))
    parsed = Parsed(
        providers=_named(layout.single("providers") or "providers.yaml", providers),
        routes=_named(layout.single("routes") or "routes.yaml", routes),
        limits=_named(layout.single("limits") or "limits.yaml", limits),
        teams=_named(layout.single("teams") or "teams.yaml", teams),
        keys=[(name, kf) for name, kf in keys if kf is not None],
        providers_file=layout.single("providers") or "providers.yaml",
        limits_file=layout.single("limits") or "limits.yaml",
        teams_file=layout.single("teams") or "teams.yaml",
    )
    issues = cross_check(parsed, sources.where)
    if parsed.providers is not None:
        issues += refused_refs(*parsed.providers, allowed)
    if prices is not None:
        prices_file = layout.single("prices") or "prices.yaml"
        issues += price_issues(
            prices_file, prices.prices, providers.providers if providers else None
        )
    if alerts is not None:
        key_ids = (
            None
            if len(parsed.keys) < len(keys)
            else {k.id for _, kf in parsed.keys for k in kf.keys}
        )
        team_names = teams.teams if teams is not None else None
        issues += alert_issues(
            layout.single("alerts") or "alerts.yaml", alerts, team_names, key_ids, allowed
        )
    for issue in issues:
        problems.append(sources.problem(issue.file, issue.loc, issue.message, issue.on_key))
    if problems or providers is None or routes is None or limits is None or teams is None:
        raise PolicyInvalid(problems)
    return Policy(
        providers=providers.providers,
        routes=routes.routes,
        limits=limits,
        keys=tuple(k for _, kf in parsed.keys for k in kf.keys),
        admins=tuple(a for _, kf in parsed.keys for a in kf.admins),
        teams=teams.teams,
        prices=prices.prices if prices is not None else {},
        alerts=alerts if alerts is not None else AlertsFile(),
    )


def load_policy_at(repo_path: Path, rev: str) -> tuple[str, Policy]:
    """(commit sha, policy) of a committed revision; raises PolicyInvalid or PolicyRepoError."""
    with open_repo(repo_path) as repo:
        sha = resolve(repo, rev)
        if sha is None:
            raise RevisionNotFound(
                f"revision '{rev}' not found in {repo_path}: name an existing branch, ref "
                "or commit (e.g. main, refs/heads/main, HEAD)"
            )
        files = read_policy_files(repo, sha)
    return sha, load_policy(files)


def _named(name: str, model: _M | None) -> tuple[str, _M] | None:
    return (name, model) if model is not None else None


class _Layout:
    """Which file plays which role; unknown and doubled files are problems."""

    def __init__(self, files: Mapping[str, bytes], problems: list[Problem]) -> None:
        self._roles: dict[str, str] = {}
        self._keys_dir: list[str] = []
        for path in sorted(files):
            base = path.rsplit("/", 1)[-1]
            if base.startswith("."):
                continue  # tool configuration (.yamllint.yml...), not policy
            if "/" in path:
                self._keys_dir.append(path)
                continue
            stem = base.rsplit(".", 1)[0]
            if stem not in FILE_MODELS:
                message = f"unknown policy file '{path}': policy files are {_FILE_NAMES}; "
                problems.append(Problem(path, 1, 1, message + "rename or remove it"))
            elif stem in self._roles:
                message = f"both {self._roles[stem]} and {path} exist: keep one of them"
                problems.append(Problem(path, 1, 1, message))
            else:
                self._roles[stem] = path

    def single(self, role: str) -> str | None:
        return self._roles.get(role)

    def keys_files(self) -> list[str]:
        main = self._roles.get("keys")
        return ([main] if main else []) + self._keys_dir


class _Sources:
    """The texts of one revision; positions are computed only when a problem needs them."""

    def __init__(self, files: Mapping[str, bytes]) -> None:
        self._files = files
        self._maps: dict[str, SourceMap | YamlSyntaxError] = {}

    def text(self, name: str) -> str | None:
        try:
            return self._files[name].decode("utf-8-sig")
        except UnicodeDecodeError:
            return None

    def source_map(self, name: str, error_line: int | None = None) -> SourceMap | YamlSyntaxError:
        if name not in self._maps:
            try:
                self._maps[name] = SourceMap.build(self.text(name) or "", error_line)
            except YamlSyntaxError as exc:
                self._maps[name] = exc
        return self._maps[name]

    def problem(self, name: str, loc: Loc, message: str, on_key: bool = False) -> Problem:
        line, col = self._position(name, loc, on_key)
        return Problem(name, line + 1, col + 1, message)

    def where(self, name: str, loc: Loc) -> str:
        line, col = self._position(name, loc, False)
        return f"{name}:{line + 1}:{col + 1}"

    def finding(self, name: str, finding: Finding) -> Problem:
        return Problem(name, finding.line + 1, finding.col + 1, finding.message)

    def _position(self, name: str, loc: Loc, on_key: bool) -> tuple[int, int]:
        source = self.source_map(name)
        return source.position(loc, on_key) if isinstance(source, SourceMap) else (0, 0)


def _load(
    sources: _Sources, name: str | None, model: type[_M], problems: list[Problem]
) -> _M | None:
    """The validated file, an empty one when the file is absent, or None with problems noted."""
    if name is None:
        try:
            return model()
        except ValidationError:  # a required file: its absence is reported by the caller
            return None
    text = sources.text(name)
    if text is None:
        problems.append(Problem(name, 1, 1, "not UTF-8 text: save the file as UTF-8"))
        return None
    try:
        data = yaml_rs.loads(text, parse_datetime=False, alias_limits=_ALIAS_LIMITS)
    except yaml_rs.YAMLDecodeError as exc:
        problems.extend(_syntax_problems(sources, name, str(exc)))
        # Duplicate keys alone still leave a reading (the later one wins, as in most
        # tools): validate it too, so one run reports every problem in the file.
        try:
            data = yaml_rs.loads(
                text,
                parse_datetime=False,
                alias_limits=_ALIAS_LIMITS,
                duplicate_key_policy=_LAST_WINS,
            )
        except yaml_rs.YAMLDecodeError:
            return None
        _, errors = _validate(model, {} if data is None else data)
        problems.extend(_worded(sources, name, model, errors))
        return None
    obj, errors = _validate(model, {} if data is None else data)
    if not errors:
        return obj
    source = sources.source_map(name)
    if isinstance(source, YamlSyntaxError):  # the two parsers disagree: report its reading
        problems.append(sources.finding(name, source.finding))
    elif source.findings:  # e.g. a second document, which yaml_rs returns as a list
        problems.extend(sources.finding(name, f) for f in source.findings)
    else:
        problems.extend(_worded(sources, name, model, errors))
    return None


def _worded(
    sources: _Sources, name: str, model: type[BaseModel], errors: list[ErrorDetails]
) -> list[Problem]:
    located = []
    for error in collapse_unions(errors, model):
        worded = reword(model, error, name)
        located.append(sources.problem(name, worded.loc, worded.message, worded.on_key))
    return located


def _syntax_problems(sources: _Sources, name: str, rust_message: str) -> list[Problem]:
    match = re.search(r"line (\d+), column (\d+)", rust_message)
    line, col = (int(match[1]), int(match[2])) if match else (1, 1)
    source = sources.source_map(name, line if match else None)
    if isinstance(source, YamlSyntaxError):
        return [sources.finding(name, source.finding)]
    if source.findings:
        return [sources.finding(name, f) for f in source.findings]
    # Only yaml_rs refuses it: use its position and reason, never its quoted source line.
    reason = rust_message.strip().splitlines()[-1] if rust_message.strip() else "not valid YAML"
    return [Problem(name, line, col, f"YAML syntax error: {reason}")]


def _validate(model: type[_M], data: Any) -> tuple[_M | None, list[ErrorDetails]]:
    keys = data.get("keys") if isinstance(data, dict) else None
    if model is KeysFile and isinstance(keys, list) and len(keys) > KEY_CHUNK:
        return _validate_keys_in_chunks(model, data, keys)
    try:
        return model.model_validate(data), []
    except ValidationError as exc:
        return None, exc.errors(include_url=False)


def _validate_keys_in_chunks(
    model: type[_M], data: dict[str, Any], keys: list[Any]
) -> tuple[_M | None, list[ErrorDetails]]:
    """A big keys file, validated a chunk at a time so the serving loop gets the GIL between."""
    errors: list[ErrorDetails] = []
    rest: _M | None = None
    try:
        rest = model.model_validate({k: v for k, v in data.items() if k != "keys"})
    except ValidationError as exc:
        errors += exc.errors(include_url=False)
    validated: list[Key] = []
    for start in range(0, len(keys), KEY_CHUNK):
        try:
            validated += _KEY_LIST.validate_python(keys[start : start + KEY_CHUNK])
        except ValidationError as exc:
            for error in exc.errors(include_url=False):
                index, *inner = error["loc"]
                error["loc"] = ("keys", start + int(index), *inner)
                errors.append(error)
    if errors or rest is None:
        return None, errors
    return rest.model_copy(update={"keys": tuple(validated)}), []
