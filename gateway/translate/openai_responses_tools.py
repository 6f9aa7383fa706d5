"""The tools of an OpenAI Responses request, read into the canonical request.

Function tools, ``namespace`` tools and ``additional_tools`` input items become canonical
functions under the names of `tool_names` (translate.tool_names); other tool types follow
translate.server_tools.
"""

from __future__ import annotations

from typing import Any

from gateway.translate import server_tools
from gateway.translate.canonical import ChatRequest, Tool, ToolChoice
from gateway.translate.tool_names import Origin, ToolNames
from gateway.translate.wire import as_dict, as_list, as_str, bad, not_translatable, opt_str


def _tool_lists(body: dict[str, Any]) -> list[tuple[str, list[Any]]]:
    """The request's tool definitions: ``tools`` and each ``additional_tools`` input item's."""
    found: list[tuple[str, list[Any]]] = []
    if body.get("tools") is not None:
        found.append(("tools", as_list(body["tools"], "tools")))
    raw = body.get("input")
    for i, item in enumerate(raw if isinstance(raw, list) else ()):
        if isinstance(item, dict) and item.get("type") == "additional_tools":
            found.append((f"input[{i}].tools", as_list(item.get("tools"), f"input[{i}].tools")))
    return found


def tool_names(body: dict[str, Any]) -> ToolNames:
    """The names this request's tools travel under (see translate.tool_names): its tools,
    its history's calls and its tool_choice. Reads what it can; the reader checks."""
    origins: list[Origin] = []

    def add(name: Any, namespace: Any = None) -> None:
        if isinstance(name, str) and (namespace is None or isinstance(namespace, str)):
            origins.append(Origin(name, namespace or None))

    for _, tools in _tool_lists(body):
        for tool in tools:
            if not isinstance(tool, dict):
                continue
            if tool.get("type") == "function":
                add(tool.get("name"))
            elif tool.get("type") == "namespace" and isinstance(tool.get("tools"), list):
                for inner in tool["tools"]:
                    if isinstance(inner, dict):
                        add(inner.get("name"), tool.get("name"))
    raw = body.get("input")
    for item in raw if isinstance(raw, list) else ():
        if isinstance(item, dict) and item.get("type") == "function_call":
            add(item.get("name"), item.get("namespace"))
    choice = body.get("tool_choice")
    if isinstance(choice, dict) and choice.get("type") == "function":
        add(choice.get("name"), choice.get("namespace"))
    return ToolNames(origins)


def read_tools(body: dict[str, Any], req: ChatRequest, names: ToolNames) -> None:
    index: dict[str, int] = {}
    """Flat name -> position in req.tools: a later definition (Codex re-sends its tools in
    later additional_tools items) replaces an earlier one."""

    def function(tool: dict[str, Any], param: str, namespace: dict[str, Any] | None) -> None:
        params = tool.get("parameters") or {"type": "object", "properties": {}}
        name = as_str(tool.get("name"), param + ".name")
        description = opt_str(tool, "description", param + ".description")
        ns_name: str | None = None
        if namespace is not None:
            ns_name = as_str(namespace.get("name"), "namespace name")
            about = opt_str(namespace, "description", "namespace description")
            if about:  # the namespace's description reaches the model with each function
                description = f"{description or ''}\n\n({ns_name}: {about})".lstrip()
        flat = names.flat(name, ns_name)
        entry = Tool(flat, description, as_dict(params, param + ".parameters"))
        if flat in index:
            req.tools[index[flat]] = entry
        else:
            index[flat] = len(req.tools)
            req.tools.append(entry)

    for where, tools in _tool_lists(body):
        for i, tool in enumerate(tools):
            param = f"{where}[{i}]"
            tool = as_dict(tool, param)
            kind = tool.get("type")
            if kind == "function":
                function(tool, param, None)
            elif kind == "namespace":
                as_str(tool.get("name"), param + ".name")
                for j, inner in enumerate(as_list(tool.get("tools"), param + ".tools")):
                    inner = as_dict(inner, f"{param}.tools[{j}]")
                    kind = inner.get("type", "function")
                    if kind == "custom":
                        server_tools.read(inner, f"{param}.tools[{j}]", req)  # refuses
                    elif kind != "function":
                        raise bad(f"{param}.tools[{j}].type", "expected function or custom")
                    function(inner, f"{param}.tools[{j}]", tool)
            else:
                server_tools.read(tool, param, req)
    choice = body.get("tool_choice")
    if choice in ("auto", "none", "required"):
        req.tool_choice = ToolChoice(choice)
    elif isinstance(choice, dict) and choice.get("type") == "function":
        name = as_str(choice.get("name"), "tool_choice.name")
        namespace = opt_str(choice, "namespace", "tool_choice.namespace")
        req.tool_choice = ToolChoice("tool", names.flat(name, namespace))
    elif isinstance(choice, dict) and choice.get("type") in server_tools.SERVER_TYPES:
        raise server_tools.refuse_forced(str(choice["type"]))
    elif choice is not None:
        raise not_translatable("This tool_choice", "Use auto, none, required or a function.")
