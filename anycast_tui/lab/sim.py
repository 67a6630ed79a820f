"""The simulated fabric as its devices' SSH endpoints see it: the model (``simfabric.Fabric``: topology,
routing, state changes) and its command-line emulator (``simshell.Shell``) in one object.

``SimFabric`` is a ``Fabric`` whose :meth:`SimFabric.handle` answers the read-only iproute2/sysctl/ss
command lines of :mod:`anycast_tui.collect.commands` in the tools' own formats, through its :attr:`shell`.
"""

from __future__ import annotations

import time
from typing import Callable

from anycast_tui.lab.simfabric import Fabric, SimConfig, SimError
from anycast_tui.lab.simshell import Shell
from anycast_tui.lab.sshserver import CommandResult

__all__ = ["SimConfig", "SimFabric", "CommandResult", "SimError"]


class SimFabric(Fabric):
    """The simulated fabric, answering its devices' command lines."""

    def __init__(self, config: SimConfig | None = None, *, clock: Callable[[], float] = time.monotonic):
        super().__init__(config, clock=clock)
        self.shell = Shell(self)

    def handler(self, device: str) -> Callable[[str], CommandResult]:
        """The SSH farm's per-device handler."""
        return self.shell.handler(device)

    def handle(self, device: str, command_line: str) -> CommandResult:
        """Answer one command line exactly as the device's shell + iproute2 would (:meth:`Shell.handle`)."""
        return self.shell.handle(device, command_line)
