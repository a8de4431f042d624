"""A bigmap tenant over any SiLA 2 server: ``build_sila_tenant(mapping)``.

It connects with the ``sila2`` package's dynamic client (``SilaClient``: the features are
read from the server at run time, no generated code), checks the mapping file against the
server's feature definitions, and registers one capability per mapped command. A request
then runs as: parameters -> SiLA parameters (paths, units), the command (an observable
command's progress becomes the job's progress), SiLA responses -> the result (paths, units),
response files attached, and the server's identity in the provenance.

Failures become failed requests carrying the SiLA message: a defined execution error (its
identifier and message; ``input_error`` or ``calculation_failed`` as the mapping says), an
undefined execution error, a parameter the server's validation rejected (``input_error``), a
command that outlives ``timeout_s``, and a lost connection (the server stopped answering
mid-command: the request fails with the address and gRPC's reason, the connection is dropped
and made again for the next request). The observable properties named under ``status`` are
subscribed to; their values and the connection state go to the broker with each heartbeat.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from bigmap.client import CalculationFailed, InputError, JobContext, Tenant, package_version
from bigmap.schemas.capability import finales_capability
from bigmap.schemas.units import UnitError, subschema, unit_from_text
from bigmap.tenants.sila.fdl import CommandInfo, FeatureInfo, SilaType, parse_feature
from bigmap.tenants.sila.mapping import (
    CapabilityMap,
    FieldMap,
    Mapping,
    MappingError,
    check_against_device,
    conversion,
    get_path,
    set_path,
    split_path,
)

log = logging.getLogger("bigmap.sila")

EMULATOR_FEATURE = "EmulatorInfo"  # bigmap's emulators say so through this feature


class DeviceUnavailable(Exception):
    """The SiLA server cannot be reached (or stopped answering)."""


def _plain(value: Any) -> Any:
    """SiLA responses (named tuples, bytes, datetimes) as plain Python values."""
    if hasattr(value, "_asdict"):
        return {k: _plain(v) for k, v in value._asdict().items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def _utcnow() -> str:
    return datetime.now(UTC).isoformat()


class SilaConnection:
    """One SiLA server, connected on demand, reconnected after a loss."""

    def __init__(self, mapping: Mapping) -> None:
        self.mapping = mapping
        self.spec = mapping.server
        self.address = f"{self.spec.host}:{self.spec.port}"
        self._client: Any = None
        self._lock = threading.RLock()
        self.features: dict[str, FeatureInfo] = {}
        self.info: dict[str, Any] = {"address": self.address}
        self.connected = False
        self.last_error = ""
        self.on_change: Callable[[], None] | None = None

    def client(self) -> Any:
        with self._lock:
            if self._client is None:
                self._connect()
            return self._client

    def _connect(self) -> None:
        from sila2.client import SilaClient

        s = self.spec
        try:
            with socket.create_connection((s.host, s.port), timeout=s.connect_timeout_s):
                pass
        except OSError as exc:
            self._set_down(f"cannot reach the SiLA server at {self.address}: {exc.strerror or exc}")
            raise DeviceUnavailable(self.last_error) from None
        kwargs: dict[str, Any] = {"insecure": s.insecure}
        if not s.insecure:
            kwargs.update(
                root_certs=self.mapping.read_file(s.root_certs),
                private_key=self.mapping.read_file(s.private_key),
                cert_chain=self.mapping.read_file(s.cert_chain),
            )
        try:
            client = SilaClient(s.host, s.port, **kwargs)
            svc = client.SiLAService
            features = {}
            for fid in svc.ImplementedFeatures.get():
                if fid.startswith("org.silastandard/core/SiLAService/"):
                    continue
                info = parse_feature(svc.GetFeatureDefinition(fid).FeatureDefinition)
                features[info.identifier] = info
            info = {
                "address": self.address,
                "protocol": "SiLA 2",
                "server_name": svc.ServerName.get(),
                "server_type": svc.ServerType.get(),
                "server_uuid": svc.ServerUUID.get(),
                "server_version": svc.ServerVersion.get(),
                "vendor_url": svc.ServerVendorURL.get(),
                "description": svc.ServerDescription.get(),
                "features": sorted(f.fully_qualified for f in features.values()),
                "tls": not s.insecure,
                "emulated": bool(self.mapping.emulated),
            }
            emu = features.get(EMULATOR_FEATURE)
            if emu is not None and "Description" in emu.properties:
                info["emulated"] = True
                try:
                    info["emulator"] = json.loads(
                        getattr(client, EMULATOR_FEATURE).Description.get()
                    )
                except (ValueError, TypeError):
                    info["emulator"] = {"emulated": True}
        except Exception as exc:  # RpcError, SilaConnectionError, RuntimeError from sila2
            self._set_down(
                f"the SiLA server at {self.address} did not answer as one: {type(exc).__name__}: {exc}"
            )
            raise DeviceUnavailable(self.last_error) from None
        self._client = client
        self.features = features
        self.info = info
        self.connected = True
        self.last_error = ""
        log.info("connected to %s (%s)", info["server_name"], self.address)
        if self.on_change:
            self.on_change()

    def _set_down(self, reason: str) -> None:
        changed = self.connected or reason != self.last_error
        self.connected = False
        self.last_error = reason
        if changed and self.on_change:
            self.on_change()

    def invalidate(self, reason: str) -> None:
        """Drop the connection (it will be made again on the next use)."""
        with self._lock:
            client, self._client = self._client, None
            self._set_down(reason)
        if client is not None:
            try:
                client.close()
            except Exception:  # noqa: BLE001 - closing a dead channel
                pass

    def close(self) -> None:
        self.invalidate("closed")


# ----------------------------------------------------------------------------- compiled maps

Getter = Callable[[dict[str, Any]], Any]


def _schema_unit(schema: dict[str, Any] | None, path: list[str | int]) -> str | None:
    node = subschema(schema, path)
    if not node:
        return None
    if isinstance(node.get("unit"), str):
        return node["unit"]
    if isinstance(node.get("description"), str):
        return unit_from_text(node["description"])
    return None


class _Problems(list):
    def add(self, where: str, msg: str) -> None:
        self.append((where, msg))


def _compile(
    fm: FieldMap,
    sila: SilaType | None,
    bigmap_unit: str | None,
    to_device: bool,
    where: str,
    problems: _Problems,
) -> Getter:
    """A function of the sources ({params, response, device, execution, item}) giving the
    value on the other side."""
    has_value = "value" in fm.model_fields_set
    parts = split_path(fm.from_) if fm.from_ else []
    leaf = sila.leaf() if sila is not None else None
    conv = None
    unit = fm.unit or bigmap_unit
    if fm.each is None and not fm.json_:
        try:
            conv = conversion(unit, fm.sila_unit, leaf.unit if leaf else None, to_device)
        except UnitError as exc:
            problems.add(f"{where}.unit", str(exc))
        if (
            conv is None
            and leaf is not None
            and leaf.unit is not None
            and leaf.numeric
            and to_device
        ):
            problems.add(
                f"{where}.unit",
                f"the device wants this in {leaf.unit.label}: say which unit the request gives (unit: ...)",
            )
    subs: dict[str, Getter] = {}
    if fm.each is not None:
        item = sila.item if sila is not None and sila.kind == "list" and sila.item else sila
        for k, sub in fm.each.items():
            el = (
                item.elements.get(k)
                if (to_device and item is not None and item.kind == "structure")
                else None
            )
            if (
                not to_device
                and item is not None
                and item.kind == "structure"
                and sub.from_
                and sub.from_.startswith("item.")
            ):
                el = item.elements.get(sub.from_.split(".")[1])
            subs[k] = _compile(sub, el, None, to_device, f"{where}.each.{k}", problems)

    def get(src: dict[str, Any]) -> Any:
        if has_value:
            v = fm.value
        else:
            root = str(parts[0])
            try:
                v = get_path(src.get(root), parts[1:]) if len(parts) > 1 else src.get(root)
                if v is None and "default" in fm.model_fields_set:
                    v = fm.default  # a FINALES client's null is a value not given
            except KeyError as exc:
                if "default" in fm.model_fields_set:
                    v = fm.default
                elif root == "params":
                    raise InputError(
                        f"$.{exc.args[0]}: the request has no such parameter (needed by {where})"
                    ) from None
                else:
                    raise CalculationFailed(
                        f"{where}: the device's answer has no {root}.{exc.args[0]}"
                    ) from None
        if subs:
            if not isinstance(v, list):
                raise InputError(f"{where}: {fm.from_} is not a list")
            items = []
            for it in v:
                one: dict[str, Any] = {}
                for k, g in subs.items():
                    set_path(one, split_path(k), g({**src, "item": it}))
                items.append(one)
            v = items
        if fm.json_:
            if to_device:
                v = json.dumps(v)
            elif isinstance(v, str | bytes):
                try:
                    v = json.loads(v)
                except ValueError as exc:
                    raise CalculationFailed(
                        f"{where}: the device's {fm.from_} is not JSON: {exc}"
                    ) from None
        if conv is not None and v is not None:
            try:
                v = conv(v)
            except TypeError as exc:
                if to_device:
                    raise InputError(f"{where}: {exc} ({conv.text})") from None
                raise CalculationFailed(f"{where}: {exc}") from None
        if isinstance(v, bytes) and not to_device:
            import base64

            v = base64.b64encode(v).decode()
        if to_device and leaf is not None and v is not None and fm.each is None:
            v = _coerce(v, sila, where)
        return v

    return get


def _coerce(v: Any, t: SilaType | None, where: str) -> Any:
    if t is None:
        return v
    if t.kind == "list" and t.item is not None and isinstance(v, list):
        return [_coerce(x, t.item, where) for x in v]
    if t.kind != "basic":
        return v
    try:
        if t.basic == "Real" and not isinstance(v, bool):
            return float(v)
        if t.basic == "Integer" and not isinstance(v, bool):
            if isinstance(v, float) and not v.is_integer():
                raise InputError(f"{where}: {v!r} is not a whole number")
            return int(v)
        if t.basic == "String" and not isinstance(v, str):
            return json.dumps(v) if isinstance(v, dict | list) else str(v)
    except (TypeError, ValueError):
        raise InputError(f"{where}: {v!r} is not a {t.basic}") from None
    return v


class CommandPlan:
    """One mapped capability, compiled against the device's feature definitions."""

    def __init__(
        self, cap: CapabilityMap, index: int, feature: FeatureInfo, cmd: CommandInfo
    ) -> None:
        self.cap = cap
        self.feature = feature
        self.cmd = cmd
        self.where = f"$.capabilities[{index}]"
        problems = _Problems()
        shipped = None
        try:
            shipped = finales_capability(cap.quantity, cap.method)
        except (KeyError, ValueError, OSError):  # not one of the shipped capabilities
            shipped = None
        self.param_schema = cap.parameter_schema or (shipped.parameter_schema if shipped else None)
        self.result_schema = cap.result_schema or (shipped.result_schema if shipped else None)
        # a shipped (FINALES) capability keeps its definition exactly: schemas and description
        self.shipped = (
            shipped is not None and cap.parameter_schema is None and cap.result_schema is None
        )
        self.params: dict[str, Getter] = {}
        self.units: dict[str, str] = {}
        for pname, fm in cap.parameters.items():
            el = cmd.parameters[pname]
            path = split_path(fm.from_)[1:] if fm.from_ and fm.from_.startswith("params.") else []
            unit = fm.unit or (_schema_unit(self.param_schema, path) if path else None)
            self.params[pname] = _compile(
                fm, el.type, unit, True, f"{self.where}.parameters.{pname}", problems
            )
        self.result: dict[str, Getter] = {}
        for key, fm in cap.result.items():
            t = None
            if fm.from_ and fm.from_.startswith("response."):
                t = _response_type(cmd, fm.from_.split(".")[1:])
            unit = fm.unit or _schema_unit(self.result_schema, split_path(key))
            self.result[key] = _compile(fm, t, unit, False, f"{self.where}.result.{key}", problems)
        self.formation_cycles: Getter | None = None
        if cap.analysis is not None and cap.analysis.formation_cycles is not None:
            fc = cap.analysis.formation_cycles
            t = (
                _response_type(cmd, fc.from_.split(".")[1:])
                if fc.from_ and fc.from_.startswith("response.")
                else None
            )
            self.formation_cycles = _compile(
                fc, t, None, False, f"{self.where}.analysis.formation_cycles", problems
            )
        if problems:
            raise MappingError(list(problems))
        if self.param_schema is None:
            self.param_schema = self._generated_parameters()
        if self.result_schema is None:
            self.result_schema = self._generated_result()
        self.limitations = cap.limitations if cap.limitations is not None else self._limitations()

    # schemas and limitations from the device's types (when the capability is new) ---------

    def _node(self, fm: FieldMap, t: SilaType | None, *, to_device: bool) -> dict[str, Any]:
        """The JSON Schema of one mapped value: for parameters, what the request gives; for
        results, what the result holds. A list mapped with ``each`` describes its items'
        properties (nested by their dotted paths), each typed by the device's element."""
        if fm.json_ or t is None:
            return {}
        if not fm.each:
            node = t.json_schema()
            if fm.unit:
                node["unit"] = fm.unit
            return node
        item_t = t.item if t.kind == "list" and t.item else t
        items: dict[str, Any] = {"type": "object", "properties": {}, "required": []}
        for k, sub in fm.each.items():
            from_item = bool(sub.from_ and sub.from_.startswith("item."))
            if to_device:
                if not from_item:
                    continue  # a constant or a request-wide value: not in the items
                el = item_t.elements.get(k) if item_t.kind == "structure" else None
                path = sub.from_.split(".")[1:]  # type: ignore[union-attr]
                required = "default" not in sub.model_fields_set
            else:
                el = None
                if from_item and item_t.kind == "structure":
                    el = item_t.elements.get(sub.from_.split(".")[1])  # type: ignore[union-attr]
                    for part in sub.from_.split(".")[2:]:  # type: ignore[union-attr]
                        el = el.elements.get(part) if el and el.kind == "structure" else None
                path = k.split(".")
                required = True
            leaf = self._node(sub, el, to_device=to_device) if el is not None else {}
            if not leaf and sub.unit:
                leaf = {"unit": sub.unit}
            node = items
            for part in path[:-1]:
                node = node["properties"].setdefault(
                    part, {"type": "object", "properties": {}, "required": []}
                )
            _require_path(items, path, required)
            node["properties"][path[-1]] = leaf
        return {"type": "array", "items": items}

    def _generated_parameters(self) -> dict[str, Any]:
        schema: dict[str, Any] = {
            "type": "object",
            "properties": {},
            "required": [],
            "additionalProperties": False,
        }
        for pname, fm in self.cap.parameters.items():
            if not (fm.from_ and fm.from_.startswith("params.")):
                continue
            el = self.cmd.parameters[pname]
            parts = fm.from_.split(".")[1:]
            node = schema
            for p in parts[:-1]:
                node["properties"].setdefault(
                    p, {"type": "object", "properties": {}, "required": []}
                )
                if p not in node["required"]:
                    node["required"].append(p)
                node = node["properties"][p]
            leaf = self._node(fm, el.type, to_device=True)
            leaf["description"] = el.description or el.display_name
            node["properties"][parts[-1]] = leaf
            if "default" not in fm.model_fields_set and parts[-1] not in node["required"]:
                node["required"].append(parts[-1])
        return schema

    def _generated_result(self) -> dict[str, Any]:
        schema: dict[str, Any] = {"type": "object", "properties": {}, "required": []}
        for key, fm in self.cap.result.items():
            parts = key.split(".")
            node = schema
            for p in parts[:-1]:
                node["properties"].setdefault(
                    p, {"type": "object", "properties": {}, "required": []}
                )
                if p not in node["required"]:
                    node["required"].append(p)
                node = node["properties"][p]
            if fm.from_ and fm.from_.startswith("response."):
                t = _response_type(self.cmd, fm.from_.split(".")[1:])
                leaf = self._node(fm, t, to_device=False)
                if t is not None and t.leaf().basic == "Binary":
                    leaf = {"type": "string", "contentEncoding": "base64"}
            elif fm.from_ and fm.from_.startswith("params."):
                leaf = dict(subschema(self.param_schema, split_path(fm.from_)[1:]) or {})
            else:
                leaf = {}
            if fm.unit and "unit" not in leaf:
                leaf["unit"] = fm.unit
            node["properties"][parts[-1]] = leaf
            if parts[-1] not in node["required"]:
                node["required"].append(parts[-1])
        return schema

    def _limitations(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for pname, fm in self.cap.parameters.items():
            if not (fm.from_ and fm.from_.startswith("params.")) or fm.each or fm.json_:
                continue
            t = self.cmd.parameters[pname].type.leaf()
            if not t.numeric or (t.minimum is None and t.maximum is None):
                continue
            path = split_path(fm.from_)[1:]
            unit = fm.unit or _schema_unit(self.param_schema, path)
            try:
                back = conversion(unit, fm.sila_unit, t.unit, to_device=False)
            except UnitError:
                continue
            rng: dict[str, float] = {}
            for key, v in (("min", t.minimum), ("max", t.maximum)):
                if v is not None:
                    rng[key] = round(back(v) if back else v, 12)
            set_path(out, path, [rng])
        return out

    # running -------------------------------------------------------------------------------

    def arguments(self, params: dict[str, Any], device: dict[str, Any]) -> dict[str, Any]:
        src = {"params": params, "device": device}
        return {k: g(src) for k, g in self.params.items()}

    def build_result(self, src: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, g in self.result.items():
            set_path(out, split_path(key), g(src))
        return out


def _require_path(schema: dict[str, Any], path: list[str], required: bool) -> None:
    """Mark each step of ``path`` required in ``schema`` (objects nested by path), the last
    one only if ``required``."""
    node = schema
    for i, part in enumerate(path):
        if (i < len(path) - 1 or required) and part not in node["required"]:
            node["required"].append(part)
        if i < len(path) - 1:
            node = node["properties"][part]


def file_name(template: str, resp: dict[str, Any], index: int, request: str) -> str:
    """A file's name: ``{index}``, ``{request}`` and the command's String or Integer
    responses (``{RawFileName}``) filled in, reduced to a plain file name."""
    scalars = {
        k: v for k, v in resp.items() if isinstance(v, str | int) and not isinstance(v, bool)
    }
    try:
        name = template.format_map({**scalars, "index": index, "request": request})
    except (KeyError, IndexError, ValueError, AttributeError) as exc:
        raise CalculationFailed(f"the file name {template!r} cannot be formed: {exc}") from None
    name = name.replace("/", "_").replace("\\", "_").strip() or f"file_{index}"
    return name[:200]


def _response_type(cmd: CommandInfo, parts: list[str]) -> SilaType | None:
    el = cmd.responses.get(parts[0]) if parts else None
    t = el.type if el is not None else None
    for p in parts[1:]:
        if t is None:
            return None
        if t.kind == "list" and p.isdigit():
            t = t.item
        elif t.kind == "structure":
            t = t.elements.get(p)
        else:
            return None
    return t


# ----------------------------------------------------------------------------- the tenant


class SilaDevice:
    """The connection, the compiled plans and the status of one mapped SiLA server."""

    def __init__(self, mapping: Mapping, *, probe_s: float = 1.0) -> None:
        self.mapping = mapping
        self.conn = SilaConnection(mapping)
        self.probe_s = probe_s
        self.status_values: dict[str, Any] = {}
        self.status_at: str | None = None
        self.tenant: Tenant | None = None
        self._monitor: threading.Thread | None = None
        self._stop = threading.Event()
        self.conn.on_change = self._changed
        self.conn.client()  # the device must answer at start: its features make the capabilities
        check_against_device(mapping, self.conn.features)
        problems: list[tuple[str, str]] = []
        self.plans: list[CommandPlan] = []
        for i, cap in enumerate(mapping.capabilities):
            fname, cname = cap.command.split(".")
            feat = self.conn.features[fname]
            try:
                self.plans.append(CommandPlan(cap, i, feat, feat.commands[cname]))
            except MappingError as exc:
                problems += exc.problems
        if problems:
            raise MappingError(problems, mapping.label)

    def _changed(self) -> None:
        if self.tenant is not None:
            self.tenant.wake_heartbeat()

    # status ----------------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        return {
            "device": self.conn.info.get("server_name", self.conn.address),
            "address": self.conn.address,
            "connected": self.conn.connected,
            "error": self.conn.last_error or None,
            "properties": dict(self.status_values),
            "updated_at": self.status_at,
        }

    def _set_status(self, key: str, value: Any) -> None:
        value = _plain(value)
        if self.status_values.get(key) != value:
            self.status_values[key] = value
            self.status_at = _utcnow()
            self._changed()

    def start_monitor(self) -> None:
        if self._monitor is None:
            self._monitor = threading.Thread(
                target=self._watch, daemon=True, name="bigmap-sila-status"
            )
            self._monitor.start()

    def stop(self) -> None:
        self._stop.set()
        self.conn.close()

    def _watch(self) -> None:
        poll = self.mapping.status.poll_s
        while not self._stop.is_set():
            try:
                client = self.conn.client()
            except DeviceUnavailable:
                self._stop.wait(min(poll, 2.0))
                continue
            broken: list[str] = []
            subs = []
            try:
                for name in self.mapping.status.properties:
                    fname, pname = name.split(".")
                    prop = getattr(getattr(client, fname), pname)
                    if self.conn.features[fname].properties[pname].observable:
                        sub = prop.subscribe()
                        subs.append(sub)
                        threading.Thread(
                            target=self._follow,
                            args=(name, sub, broken),
                            daemon=True,
                            name=f"bigmap-sila-{pname}",
                        ).start()
                    else:
                        self._set_status(name, prop.get())
                # unobservable properties and the connection itself, every poll_s
                while not self._stop.wait(poll) and not broken:
                    client.SiLAService.ServerName.get()
                    for name in self.mapping.status.properties:
                        fname, pname = name.split(".")
                        if not self.conn.features[fname].properties[pname].observable:
                            self._set_status(name, getattr(getattr(client, fname), pname).get())
                if broken:
                    raise DeviceUnavailable(broken[0])
            except Exception as exc:  # noqa: BLE001 - any failure of the device: reconnect
                self.conn.invalidate(f"lost the SiLA server at {self.conn.address}: {exc}")
            finally:
                for sub in subs:
                    try:
                        sub.cancel()
                    except Exception:  # noqa: BLE001
                        pass
            self._stop.wait(min(poll, 2.0))

    def _follow(self, name: str, sub: Any, broken: list[str]) -> None:
        try:
            for value in sub:
                self._set_status(name, value)
        except Exception as exc:  # noqa: BLE001 - the stream broke: the device is gone
            broken.append(f"{name}: {exc}")
            return
        if not sub.is_cancelled:
            broken.append(f"{name}: the subscription ended")

    # running a command ----------------------------------------------------------------------

    def run(self, plan: CommandPlan, params: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
        from sila2.framework import (
            CommandExecutionNotFinished,
            DefinedExecutionError,
            FrameworkError,
            SilaConnectionError,
            UndefinedExecutionError,
            ValidationError,
        )

        cap = plan.cap
        name = self.conn.info.get("server_name", self.conn.address)
        try:
            client = self.conn.client()
        except DeviceUnavailable as exc:
            raise CalculationFailed(f"{cap.command}: {exc}") from None
        args = plan.arguments(params, self.conn.info)
        fname, cname = cap.command.split(".")
        command = getattr(getattr(client, fname), cname)
        started = _utcnow()
        t0 = time.monotonic()
        inst = None
        try:
            if plan.cmd.observable:
                inst = command(**args)
                ctx.progress(0.0, f"{cap.command} started on {name}")
                responses = self._wait(inst, plan, ctx, t0, CommandExecutionNotFinished)
            else:
                responses = command(**args)
        except DefinedExecutionError as exc:
            kind = cap.errors.get(exc.identifier, "calculation_failed")
            cls = InputError if kind == "input_error" else CalculationFailed
            raise cls(
                f"{name}: {cap.command} failed with the SiLA defined execution error {exc.identifier}: {exc.message}"
            ) from None
        except ValidationError as exc:
            which = str(getattr(exc, "parameter_fully_qualified_identifier", "") or "").rsplit(
                "/", 1
            )[-1]
            raise InputError(
                f"{name} rejected the parameter {which or '?'} of {cap.command} (SiLA validation error): {exc.message}"
            ) from None
        except UndefinedExecutionError as exc:
            raise CalculationFailed(
                f"{name}: {cap.command} failed with a SiLA undefined execution error: {exc.message}"
            ) from None
        except (SilaConnectionError, DeviceUnavailable) as exc:
            reason = (
                f"lost the connection to the SiLA server {name} at {self.conn.address} during {cap.command} "
                f"after {time.monotonic() - t0:.1f} s: {exc}"
            )
            self.conn.invalidate(reason)
            raise CalculationFailed(reason) from None
        except FrameworkError as exc:
            raise CalculationFailed(
                f"{name}: {cap.command}: SiLA framework error: {exc.message}"
            ) from None
        finally:
            if inst is not None:
                try:
                    inst.cancel_execution_info_subscription()
                except Exception:  # noqa: BLE001
                    pass
        finished = _utcnow()
        ctx.progress(1.0, f"{cap.command} finished on {name}")
        resp = _plain(responses)
        execution = {
            "started": started,
            "finished": finished,
            "duration_s": round(time.monotonic() - t0, 6),
            "command": cap.command,
            "execution_uuid": str(inst.execution_uuid) if inst is not None else None,
        }
        src = {"params": params, "response": resp, "device": self.conn.info, "execution": execution}
        if cap.analysis is not None:
            src["analysis"] = self._analyse(plan, src, ctx)
        data = plan.build_result(src)
        for f in cap.files:
            value: Any = src
            try:
                value = get_path(resp, split_path(f.from_)[1:])
            except KeyError:
                raise CalculationFailed(
                    f"{cap.command}: the device's answer has no {f.from_}"
                ) from None
            values = value if isinstance(value, list) else [value]
            for k, v in enumerate(values):
                fname_out = file_name(f.name, resp, k + 1, ctx.request_id or "local")
                ctx.attach(fname_out, v if isinstance(v, bytes) else str(v).encode(), f.media_type)
        info = dict(self.conn.info)
        ctx.provenance["instrument"] = {**info, "command": execution, "mapping": self.mapping.label}
        ctx.provenance["emulated"] = bool(info.get("emulated"))
        return data

    def _analyse(self, plan: CommandPlan, src: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
        """The cycler's raw file read with bigmap's readers into the cycling figures, as
        ``virtual-lab`` computes them from its cycler's file."""
        from bigmap.tenants.lab.tenant import cycling_figures

        a = plan.cap.analysis
        assert a is not None
        try:
            raw = get_path(src["response"], split_path(a.cycler_file)[1:])
        except KeyError:
            raise CalculationFailed(
                f"{plan.cap.command}: the device's answer has no {a.cycler_file}"
            ) from None
        content = raw if isinstance(raw, bytes) else str(raw).encode()
        n_form = plan.formation_cycles(src) if plan.formation_cycles else 0
        if isinstance(n_form, bool) or not isinstance(n_form, int | float) or n_form < 0:
            raise CalculationFailed(
                f"{plan.where}.analysis.formation_cycles: {n_form!r} is not a number of cycles"
            )
        data, prov = cycling_figures(a.name, content, int(n_form), a.format)
        ctx.provenance["analysis"] = prov
        return data

    def _wait(
        self, inst: Any, plan: CommandPlan, ctx: JobContext, t0: float, not_finished: type
    ) -> Any:
        last: Any = None
        next_probe = time.monotonic() + self.probe_s
        while True:
            if inst.done:
                return inst.get_responses()
            progress = inst.progress
            status = getattr(inst.status, "name", None)
            if (progress, status) != last:
                last = (progress, status)
                ctx.progress(progress, f"{plan.cap.command}: {status or 'waiting'}")
            now = time.monotonic()
            if now - t0 > plan.cap.timeout_s:
                raise CalculationFailed(
                    f"{plan.cap.command} did not finish within timeout_s = {plan.cap.timeout_s:g} s"
                )
            stream = getattr(inst, "_ClientObservableCommandInstance__info_update_thread", None)
            stream_alive = stream is not None and stream.is_alive()
            if now >= next_probe:
                # the execution-info stream ends silently when the server goes away: ask the
                # server every probe_s once it ended, every 30 probe_s while it lives
                next_probe = now + (30 * self.probe_s if stream_alive else self.probe_s)
                if not stream_alive or now - t0 > 30 * self.probe_s:
                    try:
                        return inst.get_responses()
                    except not_finished:
                        pass
            time.sleep(0.05)


def build_sila_tenant(mapping: Mapping, *, probe_s: float = 1.0) -> Tenant:
    """The tenant of a mapped SiLA server (connects to it to read its features)."""
    device = SilaDevice(mapping, probe_s=probe_s)
    info = device.conn.info

    def software() -> dict[str, Any]:
        from bigmap import __version__

        return {
            "name": "bigmap-sila",
            "version": __version__,
            "sila2": package_version("sila2"),
            "device": {
                k: info.get(k)
                for k in ("server_name", "server_type", "server_version", "server_uuid")
            },
        }

    desc = (
        mapping.tenant.description
        or f"{info.get('server_name')} ({info.get('server_type')}) over SiLA 2"
    )
    if info.get("emulated") and "emulated" not in desc:
        desc += " (emulated)"
    tenant = Tenant(
        mapping.tenant.name,
        kind="instrument",
        description=desc,
        software=software,
        contact_person=mapping.tenant.contact_person,
    )
    tenant.sila = device  # type: ignore[attr-defined]
    device.tenant = tenant
    tenant.status = device.status

    for plan in device.plans:
        _register(tenant, device, plan)
    tenant.on_start(device.start_monitor)
    return tenant


def _register(tenant: Tenant, device: SilaDevice, plan: CommandPlan) -> None:
    cap = plan.cap

    def run(p: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
        return device.run(plan, p, ctx)

    tenant.capability(
        cap.quantity,
        cap.method,
        parameters=None if plan.shipped else plan.param_schema,
        result=None if plan.shipped else plan.result_schema,
        limitations=plan.limitations,
        description=""
        if plan.shipped
        else cap.description or plan.cmd.description or f"{cap.command} over SiLA 2",
        cost=cap.cost,
        fidelity=cap.fidelity,
        lease_seconds=cap.lease_seconds,
    )(run)
