"""trainkit's command-line helpers and Markdown tables: defaults in --help, one error line with
exit status 2 for every user error (never a traceback), the shared run flags."""

import pytest

from trainkit import CheckpointMismatchError, FileFormatError, TrainingDiverged
from trainkit._cli import (
    CLIError,
    Parser,
    add_run_flags,
    check_positive,
    default_out,
    parse_ints,
    run_command,
)
from trainkit._tables import markdown_table


def test_help_shows_defaults_but_not_empty_ones(capsys):
    p = Parser(prog="tool")
    p.add_argument("--epochs", type=int, default=7, help="epochs")
    p.add_argument("--seed", type=int, default=0, help="seed")
    p.add_argument("--lr", type=float, default=None, help="learning rate (default: the preset's)")
    p.add_argument("--drops", default="", help="drops")
    add_run_flags(p, out_default=default_out("pkg", "job"))
    with pytest.raises(SystemExit) as info:
        p.parse_args(["--help"])
    assert info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "epochs (default: 7)" in text and "seed (default: 0)" in text
    assert "output folder (default: runs/pkg/job)" in text
    assert "(default: None)" not in text and "(default: False)" not in text
    assert "drops (default: )" not in text and "--no-progress" not in text
    args = p.parse_args(["--no-progress", "--no-resume"])
    assert args.quiet and args.no_resume and args.out == "runs/pkg/job"


def _raise(err):
    def command():
        raise err

    return command


@pytest.mark.parametrize(
    "err",
    [
        ValueError("learning_rate must be > 0"),
        FileNotFoundError(2, "No such file or directory", "/data/x.npz"),
        FileFormatError("/data/m.npz: not a model file"),
        TrainingDiverged("loss is NaN at step 3"),
        CLIError("--epochs must be >= 1"),
        PermissionError(13, "Permission denied", "/runs"),
    ],
)
def test_user_errors_are_one_line_with_status_2(capsys, err):
    assert run_command(_raise(err)) == 2
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and captured.out == ""
    assert "Traceback" not in captured.err
    if isinstance(err, OSError):
        assert err.filename in lines[0]


def test_checkpoint_mismatch_gets_the_command_line_hint(capsys):
    err = CheckpointMismatchError("runs/x belongs to another run; it differs in\n seed: 0 vs 1.")
    assert run_command(_raise(err)) == 2
    line = capsys.readouterr().err.strip()
    assert "\n" not in line and "seed: 0 vs 1" in line and "--no-resume" in line


def test_results_interrupts_and_bugs(capsys):
    assert run_command(lambda: None) == 0
    assert run_command(lambda: {"rows": []}) == 0
    assert run_command(lambda: 3) == 3
    assert run_command(_raise(KeyboardInterrupt())) == 130
    assert "resume" in capsys.readouterr().err
    with pytest.raises(RuntimeError):  # a bug is not a user error: the traceback is kept
        run_command(_raise(RuntimeError("bug")))


def test_parsers_of_lists_and_positive_options():
    assert parse_ints("20, 40,70") == [20, 40, 70] and parse_ints("") == []
    with pytest.raises(CLIError, match="comma-separated integers"):
        parse_ints("2,x")

    class Args:
        epochs, limit, batch_size = 3, None, 0

    with pytest.raises(CLIError, match="--batch-size must be >= 1, got 0"):
        check_positive(Args(), ("epochs", "limit", "batch_size"))


def test_markdown_table():
    rows = [{"name": "a|b", "acc": 0.123456, "n": 3}, {"name": "c", "n": None}]
    assert markdown_table(rows, ["name", "acc", "n"], headers=["model", "accuracy", "N"]) == (
        "| model | accuracy | N |\n|---|---|---|\n| a\\|b | 0.1235 | 3 |\n| c |  |  |"
    )
    with pytest.raises(ValueError, match="2 headers for 3 columns"):
        markdown_table(rows, ["name", "acc", "n"], headers=["a", "b"])
