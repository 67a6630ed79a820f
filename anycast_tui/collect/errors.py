"""Why a device could not deliver a command's output: :class:`CollectError` and its kinds.

Raised by the SSH collector (``ssh.py``, ``STREAM_LINE_MAX`` there) and by ``sshconfig.py`` (a key it cannot
load is an :class:`AuthError`); both import them from here, and ``collect.ssh`` still names them all.
"""

from __future__ import annotations

from anycast_tui.parse.longtext import Text


class CollectError(Exception):
    """A device could not deliver a command's output; ``str()`` is one line for humans."""

    permanent = False

    def __init__(self, device: str, message: str, command: str | None = None):
        self.device = device
        self.command = command  # command id, when tied to one
        self.message = " ".join(message.split())  # one line, always
        super().__init__(self.message)


class ConnectError(CollectError):
    """TCP/SSH connection could not be made or was lost (retried with backoff)."""


class BackoffWait(ConnectError):
    """Not retrying yet: the last connection attempt failed recently.

    The message is the last failure's (stable from poll to poll); ``retry_in_s`` says when.
    """

    def __init__(self, device: str, message: str, retry_in_s: float):
        super().__init__(device, message)
        self.retry_in_s = retry_in_s


class AuthError(CollectError):
    permanent = True


class HostKeyError(CollectError):
    permanent = True


class CommandTimeout(CollectError):
    pass


class ChannelClosed(CollectError):
    """The channel or connection closed before the command's exit status arrived."""


class CommandFailed(CollectError):
    def __init__(self, device: str, message: str, command: str | None = None, exit_status: int | None = None,
                 stdout: Text = ""):
        super().__init__(device, message, command)
        self.exit_status = exit_status
        self.stdout = stdout  # what the command printed before failing (vtysh prints up to a refused -c)


class CommandNotFound(CommandFailed):
    """Exit 127: the device has no such command."""


class CommandNotAllowed(CollectError):
    """A caller asked for a command outside the fixed read-only list (a bug, never sent)."""

    permanent = True


class OutputTooLarge(CommandFailed):
    """More output than ``max_output_mib`` (or a stream line over ``STREAM_LINE_MAX``): the command was aborted."""


class StreamOff(CommandFailed):
    """The stream cannot have a session channel of its own (sshd allows one per connection)."""
