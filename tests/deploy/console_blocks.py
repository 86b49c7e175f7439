"""The README's console blocks: their commands, their expected output, and a matcher for it.

A console block is a fenced ```console block of ``$ command`` lines, each followed by the
output it prints (as pytest-examples and mktestdocs do for Python). A command goes on over
lines ending in ``\\`` and over a here-document (``<<'EOF'`` ... ``EOF``).

An HTML comment on the line just above a block tells the test something about it::

    <!-- readme-test: NAME (why, for whoever reads the README's source) -->

Expected output is matched against what the command printed:

- ``…`` stands for any run of characters (none included, over lines too);
- a run of whitespace matches any run of whitespace, or none, so that a long JSON line can
  be shown broken over several lines;
- a training id (32 hex digits) or a process id (the number after ``pid ``) stands for the
  value printed there, whatever it is: the first time the README shows it, it is bound to
  what was printed, and from then on the README's value means that one, in output and in
  commands alike (``curl …/trainings/<id>/status``, ``kill <pid>``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

ANY = "…"
_FENCE = re.compile(r"^```console\s*$")
_DIRECTIVE = re.compile(r"^<!--\s*readme-test:\s*([\w-]+)\b.*-->\s*$")
_HEREDOC = re.compile(r"<<-?\s*(['\"]?)(\w+)\1")
# A value shown in the README that stands for the one printed in the same place.
_ID, _PID = "[0-9a-f]{32}", r"\d+"


@dataclass(frozen=True)
class Command:
    """One ``$`` command of a block and the output the README shows for it."""

    text: str  # the command as bash reads it (continuations and here-documents included)
    expected: str  # the output shown, trailing blank lines left out
    line: int  # the README line of its ``$``


@dataclass(frozen=True)
class ConsoleBlock:
    line: int  # the README line of the opening fence
    commands: tuple[Command, ...]
    directive: str | None = None  # NAME of a ``<!-- readme-test: NAME ... -->`` above it


def console_blocks(markdown: str) -> list[ConsoleBlock]:
    """Every ```console block of a Markdown text, in order."""
    lines = markdown.splitlines()
    blocks: list[ConsoleBlock] = []
    index = 0
    while index < len(lines):
        if not _FENCE.match(lines[index]):
            index += 1
            continue
        end = next(
            (k for k in range(index + 1, len(lines)) if lines[k].strip() == "```"), len(lines)
        )
        above = next((lines[k] for k in range(index - 1, -1, -1) if lines[k].strip()), "")
        directive = _DIRECTIVE.match(above.strip())
        commands = _commands(lines[index + 1 : end], first_line=index + 2)
        blocks.append(ConsoleBlock(index + 1, commands, directive.group(1) if directive else None))
        index = end + 1
    return blocks


def _commands(lines: list[str], first_line: int) -> tuple[Command, ...]:
    commands: list[Command] = []
    index = 0
    while index < len(lines):
        if not lines[index].startswith("$ "):
            raise ValueError(
                f"README line {first_line + index}: a console block's output must follow a "
                f"'$ ' command, got {lines[index]!r}"
            )
        start = index
        text = [lines[index][2:]]
        while text[-1].endswith("\\") and index + 1 < len(lines):
            index += 1
            text.append(lines[index])
        if heredoc := _HEREDOC.search(text[-1]):
            while index + 1 < len(lines) and lines[index].strip() != heredoc.group(2):
                index += 1
                text.append(lines[index])
        index += 1
        output_start = index
        while index < len(lines) and not lines[index].startswith("$ "):
            index += 1
        expected = "\n".join(lines[output_start:index]).rstrip()
        commands.append(Command("\n".join(text), expected, first_line + start))
    return tuple(commands)


@dataclass
class Bindings:
    """README values bound to the values printed in their place (ids, pids)."""

    values: dict[str, str] = field(default_factory=dict)

    def command(self, text: str) -> str:
        """``text`` with every bound README value replaced by the printed one."""
        if not self.values:
            return text
        pattern = "|".join(rf"\b{re.escape(value)}\b" for value in self.values)
        return re.sub(pattern, lambda m: self.values[m.group(0)], text)


class OutputMismatch(AssertionError):
    """A command printed something else than its README output."""


def match_output(expected: str, actual: str, bindings: Bindings) -> None:
    """Check ``actual`` against the README's ``expected``; bind the values it shows first.

    Raises:
        OutputMismatch: naming the first part of ``expected`` that was not printed.
    """
    pieces, names = _pattern_pieces(expected, bindings.values)
    found = re.fullmatch("".join(regex for regex, _ in pieces), actual.strip(), re.DOTALL)
    if found is None:
        raise OutputMismatch(_first_difference(pieces, expected, actual.strip()))
    for group, readme_value in names.items():
        bindings.values[readme_value] = found.group(group)


Piece = tuple[str, str]  # a regular expression, and the README text it stands for


def _pattern_pieces(expected: str, bound: Mapping[str, str]) -> tuple[list[Piece], dict[str, str]]:
    """A regular expression per token of ``expected``; the new variables by group name."""
    text = expected.strip()
    # The values this output shows for the first time, and what each may be printed as.
    shown = {value: _ID for value in re.findall(rf"\b{_ID}\b", text) if value not in bound}
    shown |= {v: _PID for v in re.findall(rf"(?<=\bpid ){_PID}\b", text) if v not in bound}
    kinds = {"any": re.escape(ANY), "space": r"\s+"}
    for kind, values in (("bound", bound), ("shown", shown)):
        if values:
            kinds[kind] = "|".join(rf"\b{re.escape(value)}\b" for value in values)
    token = re.compile("|".join(f"(?P<{kind}>{pattern})" for kind, pattern in kinds.items()))
    pieces: list[Piece] = []
    names: dict[str, str] = {}  # group name -> README value
    groups: dict[str, str] = {}  # README value -> group name
    position = 0
    for match in token.finditer(text):
        if match.start() > position:
            literal = text[position : match.start()]
            pieces.append((re.escape(literal), literal))
        position, value, kind = match.end(), match.group(0), str(match.lastgroup)
        if kind == "any":
            pieces.append((".*?", value))
        elif kind == "space":
            pieces.append((r"\s*", value))
        elif kind == "bound":
            pieces.append((re.escape(bound[value]), value))
        elif value in groups:  # shown again before it is bound: the same value each time
            pieces.append((f"(?P={groups[value]})", value))
        else:
            groups[value] = f"v{len(groups)}"
            names[groups[value]] = value
            pieces.append((f"(?P<{groups[value]}>{shown[value]})", value))
    if position < len(text):
        pieces.append((re.escape(text[position:]), text[position:]))
    return pieces, names


def _first_difference(pieces: list[Piece], expected: str, actual: str) -> str:
    """Where the README's output stops matching, for the failure message."""
    matched, at = 0, 0
    for count in range(1, len(pieces) + 1):
        prefix = re.match("".join(regex for regex, _ in pieces[:count]), actual, re.DOTALL)
        if prefix is None:
            break
        matched, at = count, prefix.end()
    wanted = pieces[matched][1] if matched < len(pieces) else "the end"
    return (
        f"the output differs from the README after {matched} of {len(pieces)} pieces: "
        f"expected next {wanted!r}, printed there {actual[at : at + 200]!r}\n"
        f"--- README:\n{expected}\n--- printed:\n{actual}"
    )


def read_blocks(readme: Path) -> list[ConsoleBlock]:
    return console_blocks(readme.read_text(encoding="utf-8"))
