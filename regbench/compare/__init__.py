"""`regbench compare`: run folders -> groups (load) -> numbers (stats, analysis) -> tables and
figures (report, figures); the command itself is in command.py."""

from regbench.compare.command import compare_command

__all__ = ["compare_command"]
