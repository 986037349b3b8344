"""The command's exit codes and the error that ends it with a message and code 2."""

from __future__ import annotations

import click

OK = 0
TASK_FAILED = 1
DECLINED = 1
USAGE = 2
INTERRUPTED = 130  # 128 + SIGINT, what a shell reports for a job stopped by Ctrl-C
TERMINATED = 143  # 128 + SIGTERM


class BadInput(click.ClickException):
    """Bad usage: a file, name, option or store the command cannot work with.

    click prints ``Error: <message>`` on stderr and exits with code 2, as it does for an
    unknown option.
    """

    exit_code = USAGE
