"""The README test's reader of console blocks and its output matcher, on small texts."""

from __future__ import annotations

import pytest

from tests.deploy.console_blocks import Bindings, OutputMismatch, console_blocks, match_output

ID_A = "99edd9c380034ad1a0858ccedd3839d5"
PRINTED_A = "4005f06a76bc426e9ebc9951e6412f35"


def test_an_ellipsis_matches_any_run_of_characters_none_and_lines_included() -> None:
    bindings = Bindings()

    match_output('{"status":"completed",…}', '{"status":"completed","epoch":3}', bindings)
    match_output('{"status":"completed",…}', '{"status":"completed",}', bindings)
    match_output("id: 1\n…\nevent: end", "id: 1\nevent: a\n\nid: 2\nevent: end", bindings)


def test_other_output_fails_naming_what_was_expected_there() -> None:
    with pytest.raises(OutputMismatch, match=r"""expected next ',"x":"cancelled"}'""") as failure:
        match_output('{"status":…,"x":"cancelled"}', '{"status":1,"x":"completed"}', Bindings())

    assert """printed there '1,"x":"completed"}'""" in str(failure.value)


def test_output_must_match_to_its_end() -> None:
    with pytest.raises(OutputMismatch):
        match_output('{"a":1}', '{"a":1}\nmore', Bindings())
    with pytest.raises(OutputMismatch):
        match_output("event: end", "", Bindings())


def test_a_json_line_may_be_shown_broken_over_lines() -> None:
    match_output('{"a":1,\n "b":2}', '{"a":1,"b":2}', Bindings())


def test_an_id_shown_first_stands_for_the_printed_one_in_later_commands_and_output() -> None:
    bindings = Bindings()

    match_output(
        f'{{"training_id":"{ID_A}","status":"queued"}}',
        f'{{"training_id":"{PRINTED_A}","status":"queued"}}',
        bindings,
    )

    assert bindings.command(f"curl -s x/api/trainings/{ID_A}/status") == (
        f"curl -s x/api/trainings/{PRINTED_A}/status"
    )
    match_output(
        f'"checkpoint_path":"…/{ID_A}.ckpt"', f'"checkpoint_path":"/s/{PRINTED_A}.ckpt"', bindings
    )
    with pytest.raises(OutputMismatch):
        match_output(f'"training_id":"{ID_A}"', f'"training_id":"{"0" * 32}"', bindings)


def test_one_id_shown_twice_in_a_block_must_be_printed_the_same_both_times() -> None:
    with pytest.raises(OutputMismatch):
        match_output(f"{ID_A} {ID_A}", f"{PRINTED_A} {'1' * 32}", Bindings())


def test_a_pid_shown_first_stands_for_the_printed_one() -> None:
    bindings = Bindings()

    match_output(
        "host: pid 5790, log …\nstop the host (kill 5790)",
        "host: pid 41, log /x\nstop the host (kill 41)",
        bindings,
    )

    assert bindings.command("kill 5790") == "kill 41"
    assert bindings.command("kill 57900") == "kill 57900"


FENCE = "```"
README = f"""
Some prose.

{FENCE}bash
$ not a console block
{FENCE}

<!-- readme-test: retry (the breaker opens after three failed checks) -->
{FENCE}console
$ curl -s -X POST localhost:8000/api/trainings/start \\
    -d '{{"epochs": 3}}'
{{"status":"queued",
 …}}

$ kill 5790
$ python - <<'EOF'
print("$ inside the here-document")
EOF
$ echo done
done
{FENCE}
"""


def test_blocks_hold_their_commands_continued_lines_here_documents_and_directive() -> None:
    (block,) = console_blocks(README)

    assert block.directive == "retry"
    assert block.line == 9
    start, kill, python, echo = block.commands
    assert (
        start.text
        == "curl -s -X POST localhost:8000/api/trainings/start \\\n    -d '{\"epochs\": 3}'"
    )
    assert start.expected == '{"status":"queued",\n …}'
    assert (kill.text, kill.expected, kill.line) == ("kill 5790", "", 15)
    assert python.text == "python - <<'EOF'\nprint(\"$ inside the here-document\")\nEOF"
    assert python.expected == ""
    assert (echo.text, echo.expected) == ("echo done", "done")


def test_output_before_any_command_is_refused() -> None:
    with pytest.raises(ValueError, match=r"README line 3: a console block's output must follow"):
        console_blocks(f"text\n{FENCE}console\nstray output\n{FENCE}\n")
