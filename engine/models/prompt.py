"""A run's prompt as a Chat Completions request: instructions, the thread's messages cut by
truncation_strategy and max_prompt_tokens, retrieved file excerpts and the tool calls and
outputs of the run's requires_action turns. Pure functions over plain dataclasses, which
the run worker fills from stored objects."""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from .tokens import count_message_tokens
from .types import ChatRequest, RetrievedChunk, ToolCall, citation_marker


class PromptTooLongError(ValueError):
    """Not even the newest message fits max_prompt_tokens: the run ends `incomplete`."""

    incomplete_reason = "max_prompt_tokens"


@dataclass(frozen=True)
class Message:
    """A thread message's text (attachments and images play no part in the prompt)."""

    role: Literal["user", "assistant"]
    text: str


@dataclass(frozen=True)
class FunctionTool:
    name: str
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


@dataclass(frozen=True)
class ToolOutput:
    tool_call_id: str
    output: str


@dataclass(frozen=True)
class ToolTurn:
    """One requires_action round of this run: what the model called (and any text it said
    first), and the outputs submitted for those calls."""

    calls: tuple[ToolCall, ...]
    outputs: tuple[ToolOutput, ...]
    text: str = ""


@dataclass(frozen=True)
class NamedFunction:
    """tool_choice naming one function the model must call."""

    name: str


ToolChoice = Literal["auto", "none", "required"] | NamedFunction


@dataclass(frozen=True)
class Truncation:
    type: Literal["auto", "last_messages"] = "auto"
    last_messages: int | None = None

    def __post_init__(self) -> None:
        if self.type == "last_messages" and (self.last_messages or 0) < 1:
            raise ValueError("truncation_strategy last_messages needs last_messages >= 1")


@dataclass(frozen=True)
class PromptInput:
    model: str
    assistant_instructions: str | None = None
    # The run's `instructions`, which replace the assistant's when given.
    instructions: str | None = None
    additional_instructions: str | None = None
    # The thread's messages, oldest first, then the run's additional_messages not yet
    # stored in the thread.
    messages: Sequence[Message] = ()
    additional_messages: Sequence[Message] = ()
    tool_turns: Sequence[ToolTurn] = ()
    tools: Sequence[FunctionTool] = ()
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    temperature: float | None = None
    top_p: float | None = None
    # As the Assistants API takes it: "auto", or {"type": "text" | "json_object" |
    # "json_schema", ...}.
    response_format: str | dict[str, Any] | None = None
    max_prompt_tokens: int | None = None
    max_completion_tokens: int | None = None
    truncation: Truncation = Truncation()
    # file_search results for this turn, best first.
    retrieved: Sequence[RetrievedChunk] = ()


def build_request(spec: PromptInput) -> ChatRequest:
    """Raises PromptTooLongError when max_prompt_tokens cannot hold the newest message."""
    before = _system_messages(spec)
    after = [*_retrieval_messages(spec.retrieved), *_tool_turn_messages(spec.tool_turns)]
    history = [
        {"role": message.role, "content": message.text}
        for message in [*spec.messages, *spec.additional_messages]
    ]
    if spec.truncation.type == "last_messages" and spec.truncation.last_messages:
        history = history[-spec.truncation.last_messages :]
    if spec.max_prompt_tokens is not None:
        history = _fit(history, [*before, *after], spec.max_prompt_tokens)
    return ChatRequest(
        model=spec.model,
        messages=tuple([*before, *history, *after]),
        temperature=spec.temperature,
        top_p=spec.top_p,
        response_format=_response_format(spec.response_format),
        tools=tuple(_tool(tool) for tool in spec.tools),
        tool_choice=_tool_choice(spec.tool_choice),
        parallel_tool_calls=spec.parallel_tool_calls,
        max_completion_tokens=spec.max_completion_tokens,
        retrieved=tuple(spec.retrieved),
    )


def _system_messages(spec: PromptInput) -> list[dict[str, Any]]:
    instructions = spec.instructions
    if instructions is None:
        instructions = spec.assistant_instructions
    parts = [text for text in (instructions, spec.additional_instructions) if text]
    return [{"role": "system", "content": "\n\n".join(parts)}] if parts else []


def _retrieval_messages(chunks: Sequence[RetrievedChunk]) -> list[dict[str, Any]]:
    if not chunks:
        return []
    excerpts = "\n\n".join(
        f"{citation_marker(index, chunk)}\n{chunk.text.strip()}"
        for index, chunk in enumerate(chunks)
    )
    return [
        {
            "role": "system",
            "content": "Excerpts from the files searched for the last message, best first. "
            "Answer from them, and cite an excerpt by writing its marker (as "
            f"{citation_marker(0, chunks[0])}) after what you take from it.\n\n{excerpts}",
        }
    ]


def _tool_turn_messages(turns: Sequence[ToolTurn]) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    for turn in turns:
        messages.append(
            {
                "role": "assistant",
                "content": turn.text or None,
                "tool_calls": [
                    {
                        "id": call.id,
                        "type": "function",
                        "function": {"name": call.name, "arguments": call.arguments},
                    }
                    for call in turn.calls
                ],
            }
        )
        messages.extend(
            {"role": "tool", "tool_call_id": output.tool_call_id, "content": output.output}
            for output in turn.outputs
        )
    return messages


def _fit(
    history: list[dict[str, Any]], fixed: list[dict[str, Any]], budget: int
) -> list[dict[str, Any]]:
    """The newest messages that fit the budget beside the fixed part, oldest dropped first."""
    used = sum(count_message_tokens(message) for message in fixed)
    kept = 0
    for message in reversed(history):
        cost = count_message_tokens(message)
        if used + cost > budget:
            break
        used += cost
        kept += 1
    if (history and kept == 0) or used > budget:
        raise PromptTooLongError(
            f"max_prompt_tokens {budget} cannot hold the instructions, tool outputs and "
            "the newest message"
        )
    return history[len(history) - kept :]


def _response_format(value: str | dict[str, Any] | None) -> dict[str, Any] | None:
    if value is None or value == "auto":
        return None
    if isinstance(value, dict) and value.get("type") in ("text", "json_object"):
        return {"type": value["type"]}
    if isinstance(value, dict) and value.get("type") == "json_schema":
        return {"type": "json_schema", "json_schema": value["json_schema"]}
    raise ValueError(f"unsupported response_format {value!r}")


def _tool(tool: FunctionTool) -> dict[str, Any]:
    function: dict[str, Any] = {"name": tool.name}
    if tool.description is not None:
        function["description"] = tool.description
    if tool.parameters is not None:
        function["parameters"] = tool.parameters
    if tool.strict is not None:
        function["strict"] = tool.strict
    return {"type": "function", "function": function}


def _tool_choice(choice: ToolChoice | None) -> str | dict[str, Any] | None:
    if isinstance(choice, NamedFunction):
        return {"type": "function", "function": {"name": choice.name}}
    return choice
