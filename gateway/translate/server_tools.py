"""Tools a provider runs itself (server tools), and what becomes of them on another provider.

The translation policy for tools, per Responses API tool type
(https://platform.openai.com/docs/api-reference/responses/create#responses-create-tools):

- ``function`` and ``namespace`` tools, also sent as ``additional_tools`` input items, are
  structure: flattened to functions (see translate.tool_names).
- **Web search** (``web_search``, ``web_search_preview`` and their dated names) is structure:
  mapped to the target's own search, Anthropic's ``web_search_20250305`` server tool
  (https://docs.anthropic.com/en/docs/agents-and-tools/tool-use/web-search-tool) or Gemini's
  ``googleSearch`` tool (https://ai.google.dev/gemini-api/docs/google-search). Its
  ``filters.allowed_domains`` and ``user_location`` map to Anthropic's ``allowed_domains`` and
  ``user_location``; ``search_context_size`` is a hint. ``external_web_access: false`` asks
  for cached results only (Codex's default), and both native searches are live: that is no
  equivalent, so such a search is treated as one the target lacks. So is a domain filter on
  Gemini, whose search cannot honour it.
- **An offered server tool the target lacks** is dropped and reported as ``tools.<type>``:
  the model answers without it, as it would from a provider without that tool (Codex offers
  web search in every request; OpenAI chat completions has no search tool to map it to).
  The hosted tools no other protocol runs (``file_search``, ``code_interpreter``,
  ``image_generation``, ``mcp``, ``computer_use_preview``, ``tool_search``) follow this rule.
- **Forcing a server tool** (``tool_choice`` naming one) is semantics, refused with a 400:
  the client demands a tool call the gateway cannot promise on another provider.
- **Client tools with shapes of their own** (``local_shell``, ``shell``, ``apply_patch``,
  ``computer``, ``custom``) are semantics, refused: the client expects the calls back as
  their own item types, with ``custom`` ones following a grammar no other protocol can
  enforce. Clients can send them as ``function`` tools instead (Codex does so for models
  outside OpenAI's families).
"""

from __future__ import annotations

from typing import Any

from gateway.errors import BadRequest, UnsupportedFeature
from gateway.translate.canonical import ChatRequest, ServerTool

WEB_SEARCH = frozenset(
    {"web_search", "web_search_2025_08_26", "web_search_preview", "web_search_preview_2025_03_11"}
)
HOSTED = frozenset(
    {
        "file_search", "code_interpreter", "image_generation", "mcp", "computer_use_preview",
        "tool_search",
    }
)  # fmt: skip
SERVER_TYPES = WEB_SEARCH | HOSTED
CLIENT_SHAPED = frozenset({"local_shell", "shell", "apply_patch", "computer", "custom"})

WEB_SEARCH_HINTS = ("search_context_size", "user_location")
REPORTED = frozenset(
    {"tools." + kind for kind in SERVER_TYPES}
    | {f"tools.{kind}.{hint}" for kind in WEB_SEARCH for hint in WEB_SEARCH_HINTS}
)
"""Every name a server-tool drop can report (translate.policy's metric labels)."""

ANTHROPIC_WEB_SEARCH = "web_search_20250305"
ANTHROPIC_WEB_SEARCH_NAME = "web_search"


def read(tool: dict[str, Any], param: str, req: ChatRequest) -> None:
    """A client's non-function tool: kept for the writer, or refused now."""
    kind = tool.get("type")
    if not isinstance(kind, str):
        raise BadRequest(f"Invalid '{param}.type': expected a string", param=f"{param}.type")
    if kind in SERVER_TYPES:
        options = {k: v for k, v in tool.items() if k != "type"}
        req.server_tools.append(ServerTool(str(kind), options))
        return
    if kind in CLIENT_SHAPED:
        raise UnsupportedFeature(
            f"'{param}' is a {kind} tool, whose calls come back in item types only OpenAI's "
            "responses API has; it cannot be translated for this route's provider. Offer it "
            "as a 'function' tool instead."
        )
    raise UnsupportedFeature(
        f"'{param}' has the tool type {kind!r}, which the gateway cannot translate for this "
        "route's provider. Use 'function' tools, or a route whose provider speaks the "
        "responses API."
    )


def refuse_forced(kind: str) -> UnsupportedFeature:
    return UnsupportedFeature(
        f"'tool_choice' forces the {kind} tool, which runs at OpenAI; this route's provider "
        "cannot promise that call. Send tool_choice 'auto' to offer it instead."
    )


def write(req: ChatRequest, target: str) -> list[dict[str, Any]]:
    """The target's native tools for the request's server tools; the rest are dropped and
    reported."""
    tools: list[dict[str, Any]] = []
    for tool in req.server_tools:
        native = _native(req, target, tool)
        if native is None:
            req.dropped.add("tools." + tool.kind)
        else:
            tools.append(native)
    return tools


def _native(req: ChatRequest, target: str, tool: ServerTool) -> dict[str, Any] | None:
    if tool.kind not in WEB_SEARCH or tool.options.get("external_web_access") is False:
        return None
    if target == "anthropic":
        return _anthropic_search(req, tool)
    if target == "gemini":
        return _gemini_search(req, tool)
    return None


def _drop_hints(req: ChatRequest, tool: ServerTool, hints: tuple[str, ...]) -> None:
    for hint in hints:
        if tool.options.get(hint) is not None:
            req.dropped.add(f"tools.{tool.kind}.{hint}")


def _allowed_domains(tool: ServerTool) -> list[str] | None:
    filters = tool.options.get("filters")
    domains = filters.get("allowed_domains") if isinstance(filters, dict) else None
    if isinstance(domains, list) and domains and all(isinstance(d, str) for d in domains):
        return domains
    return None


def _anthropic_search(req: ChatRequest, tool: ServerTool) -> dict[str, Any] | None:
    if any(t.name == ANTHROPIC_WEB_SEARCH_NAME for t in req.tools):
        return None  # Anthropic tool names are unique; the client's function keeps it
    native: dict[str, Any] = {"type": ANTHROPIC_WEB_SEARCH, "name": ANTHROPIC_WEB_SEARCH_NAME}
    domains = _allowed_domains(tool)
    if domains:
        native["allowed_domains"] = domains
    location = tool.options.get("user_location")
    if isinstance(location, dict):
        fields = ("city", "region", "country", "timezone")
        found = {k: location[k] for k in fields if isinstance(location.get(k), str)}
        native["user_location"] = {"type": "approximate", **found}
    _drop_hints(req, tool, ("search_context_size",))
    return native


def _gemini_search(req: ChatRequest, tool: ServerTool) -> dict[str, Any] | None:
    if _allowed_domains(tool):
        return None  # Google Search grounding has no domain allow-list
    _drop_hints(req, tool, WEB_SEARCH_HINTS)
    # Gemini models before 3 may refuse search with function declarations in one request;
    # the upstream's 400 then says so.
    return {"googleSearch": {}}
