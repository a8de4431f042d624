"""The instrument driver interface: one contract for real and emulated laboratory devices.

An :class:`Instrument` has a state (``idle``, ``busy``, ``error``, ``offline``), accepts typed
commands (pydantic models, subclasses of :class:`Command`, each naming itself in ``command``),
reports progress while it works, returns raw data files with its results, and reports its
calibration. The tenant code (``bigmap.tenants.lab.tenant``) only talks to this interface, so
the same capability functions serve a real device and an emulator:

- a driver for a real device is a subclass that implements :meth:`Instrument._run` by talking
  to the device (serial port, SCPI over TCP, a vendor SDK) and :meth:`Instrument._connect` /
  :meth:`Instrument._disconnect`; :attr:`Instrument.emulated` stays ``False``;
- an emulator implements the same methods with a physical model and sets ``emulated = True``;
  its :meth:`Instrument.info` carries ``"emulated": true`` and the emulator's details, and the
  tenant puts that into the provenance of every result (``ctx.provenance["instrument"]``).

Errors: :class:`InstrumentBusy`, :class:`InstrumentOffline` (a command the device cannot take
now), :class:`InstrumentFault` (the device failed while working: the instrument enters the
``error`` state until :meth:`Instrument.reset`), and :class:`CommandRejected` (a command it
does not know or whose arguments are outside what it can do).
"""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

Progress = Callable[[float, str], None]


class InstrumentState(StrEnum):
    idle = "idle"
    busy = "busy"
    error = "error"
    offline = "offline"


class InstrumentError(Exception):
    """Base of the instrument errors."""


class InstrumentBusy(InstrumentError):
    pass


class InstrumentOffline(InstrumentError):
    pass


class CommandRejected(InstrumentError):
    """A command the instrument does not accept (unknown, or arguments out of its range)."""


class InstrumentFault(InstrumentError):
    """The instrument failed while executing a command (with the device's reason)."""


class Command(BaseModel):
    """A typed command. Subclasses set ``command`` to a constant name."""

    model_config = ConfigDict(extra="forbid")

    command: str


@dataclass
class RawFile:
    """A raw data file as the instrument wrote it."""

    name: str
    content: bytes
    media_type: str = "application/octet-stream"


@dataclass
class CommandResult:
    """What a command produced: data, raw files, and when it ran (device clock)."""

    command: str
    data: dict[str, Any] = field(default_factory=dict)
    files: list[RawFile] = field(default_factory=list)
    started: str = ""
    finished: str = ""
    duration_s: float = 0.0


class Calibration(BaseModel):
    """One calibrated quantity of an instrument."""

    quantity: str
    value: float
    unit: str
    uncertainty: float | None = None
    method: str = ""
    standard: str = ""
    performed_at: str = Field(description="UTC ISO 8601")
    valid_for_measurements: int | None = None
    measurements_since: int = 0


def utcnow_iso() -> str:
    return datetime.now(UTC).isoformat()


class Instrument(ABC):
    """A laboratory instrument (see the module docstring)."""

    #: what kind of instrument (``electrolyte_station``, ``cycler``, ``cell_assembly``, ...)
    kind: ClassVar[str] = "instrument"
    #: the command types it accepts, by their ``command`` name
    commands: ClassVar[dict[str, type[Command]]] = {}
    #: True for emulators; a real driver leaves it False
    emulated: ClassVar[bool] = False

    def __init__(self, name: str, *, serial: str = "", firmware: str = "") -> None:
        self.name = name
        self.serial = serial
        self.firmware = firmware
        self._state = InstrumentState.offline
        self._lock = threading.Lock()
        self._last_error = ""
        self.calibrations: dict[str, Calibration] = {}

    # ------------------------------------------------------------------ state

    @property
    def state(self) -> InstrumentState:
        return self._state

    @property
    def last_error(self) -> str:
        return self._last_error

    def connect(self) -> None:
        """offline -> idle (opens the connection to the device)."""
        with self._lock:
            if self._state is InstrumentState.offline:
                self._connect()
                self._state = InstrumentState.idle

    def disconnect(self) -> None:
        with self._lock:
            if self._state is InstrumentState.busy:
                raise InstrumentBusy(f"{self.name} is busy; it cannot go offline now")
            self._disconnect()
            self._state = InstrumentState.offline

    def reset(self) -> None:
        """error -> idle, after the cause was dealt with."""
        with self._lock:
            if self._state is InstrumentState.error:
                self._reset()
                self._state = InstrumentState.idle
                self._last_error = ""

    # ------------------------------------------------------------------ commands

    def parse(self, command: Command | dict[str, Any]) -> Command:
        """A command object from a dict ``{"command": name, ...}`` (typed, validated)."""
        if isinstance(command, Command):
            if type(command) not in self.commands.values():
                raise CommandRejected(f"{self.name} does not accept {type(command).__name__}")
            return command
        name = command.get("command") if isinstance(command, dict) else None
        cls = self.commands.get(str(name))
        if cls is None:
            raise CommandRejected(
                f"{self.name} knows no command {name!r} (it accepts {', '.join(self.commands)})"
            )
        try:
            return cls.model_validate(command)
        except Exception as exc:  # pydantic.ValidationError
            raise CommandRejected(f"{name}: {exc}") from None

    def execute(
        self, command: Command | dict[str, Any], progress: Progress | None = None
    ) -> CommandResult:
        """Run one command: idle -> busy -> idle (or -> error on a fault)."""
        cmd = self.parse(command)
        with self._lock:
            if self._state is InstrumentState.offline:
                raise InstrumentOffline(f"{self.name} is offline")
            if self._state is InstrumentState.busy:
                raise InstrumentBusy(f"{self.name} is busy")
            if self._state is InstrumentState.error:
                raise InstrumentFault(
                    f"{self.name} is in the error state ({self._last_error}); reset it first"
                )
            self._state = InstrumentState.busy
        started = utcnow_iso()
        t0 = time.perf_counter()
        try:
            result = self._run(cmd, progress or (lambda f, m: None))
        except CommandRejected:
            with self._lock:
                self._state = InstrumentState.idle
            raise
        except Exception as exc:
            with self._lock:
                self._state = InstrumentState.error
                self._last_error = str(exc)
            if isinstance(exc, InstrumentFault):
                raise
            raise InstrumentFault(f"{type(exc).__name__}: {exc}") from exc
        with self._lock:
            self._state = InstrumentState.idle
        result.started = result.started or started
        result.finished = result.finished or utcnow_iso()
        if not result.duration_s:
            result.duration_s = time.perf_counter() - t0
        return result

    # ------------------------------------------------------------------ description

    def calibration(self) -> list[Calibration]:
        """The instrument's current calibrations."""
        return list(self.calibrations.values())

    def info(self) -> dict[str, Any]:
        """Make, model, serial, firmware, kind, whether emulated (and how): goes into the
        provenance of every result."""
        return {
            "name": self.name,
            "kind": self.kind,
            "serial": self.serial,
            "firmware": self.firmware,
            "emulated": self.emulated,
            "state": self._state.value,
            "calibration": [c.model_dump() for c in self.calibration()],
            **self._describe(),
        }

    # ------------------------------------------------------------------ for subclasses

    def _connect(self) -> None:  # noqa: B027 - optional hook
        """Open the connection (a real driver opens its port here)."""

    def _disconnect(self) -> None:  # noqa: B027 - optional hook
        """Close the connection."""

    def _reset(self) -> None:  # noqa: B027 - optional hook
        """Clear a fault on the device."""

    def _describe(self) -> dict[str, Any]:
        """Extra fields for :meth:`info` (an emulator describes its model here)."""
        return {}

    @abstractmethod
    def _run(self, command: Command, progress: Progress) -> CommandResult:
        """Execute ``command`` on the device; raise :class:`InstrumentFault` with the
        device's reason when it fails."""


class EmulatedClock:
    """Emulated time: an emulator advances it by the duration a real device would need and
    waits ``time_scale`` times as long in wall-clock time (0: no waiting), reporting progress
    meanwhile. ``max_wait`` caps the wall-clock wait of one call."""

    def __init__(self, time_scale: float = 0.0, max_wait: float = 30.0) -> None:
        if time_scale < 0:
            raise ValueError("time_scale must be >= 0")
        self.time_scale = time_scale
        self.max_wait = max_wait
        self.elapsed_s = 0.0

    def spend(self, seconds: float, progress: Progress | None = None, what: str = "") -> None:
        seconds = max(0.0, float(seconds))
        self.elapsed_s += seconds
        wall = min(seconds * self.time_scale, self.max_wait)
        if wall <= 0:
            if progress:
                progress(1.0, what)
            return
        steps = max(1, int(wall / 0.2))
        for k in range(steps):
            time.sleep(wall / steps)
            if progress:
                progress((k + 1) / steps, what)
