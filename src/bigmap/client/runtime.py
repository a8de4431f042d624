"""The tenant runtime: typed capability functions, and the loop that serves them.

A capability is a plain typed function registered with a decorator::

    tenant = Tenant("electrolyte-model", kind="simulation",
                    software={"name": "pybamm", "version": pybamm.__version__})

    @tenant.capability("conductivity", "transport_model", parameters=Input, result=Output,
                       limitations={...})
    def conductivity(params: Input, ctx: JobContext) -> Output:
        ...

The runtime does the broker plumbing: it registers the capabilities and the tenant,
claims requests with a lease and renews it while the function runs, posts the result (or
the failure with the exception's message), sends heartbeats, and on SIGTERM stops claiming
and returns unfinished claims to the queue.
"""

from __future__ import annotations

import logging
import random
import signal
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from bigmap.client.errors import (
    AuthError,
    BrokerError,
    BrokerUnavailable,
    ConflictError,
    InputError,
    TenantError,
)
from bigmap.client.http import BrokerClient
from bigmap.schemas.capability import CapabilitySpec, finales_capability
from bigmap.schemas.common import Software, TenantKind
from bigmap.schemas.tenant import Provides, TenantSpec
from bigmap.schemas.validation import json_path, validate

log = logging.getLogger("bigmap.tenant")

SchemaLike = type[BaseModel] | dict[str, Any] | None


def package_version(dist: str) -> str:
    """The installed version of a distribution, for a result's software record."""
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "unknown"


def _once_more_on_conflict(call: Callable[[], Any]) -> Any:
    """``call()``, and once more after a moment if it answers 409: a registration that lost
    a race with an identical one finds the winner's record the second time."""
    try:
        return call()
    except ConflictError:
        time.sleep(0.2 + random.random() * 0.3)
        return call()


def _schema_of(obj: SchemaLike) -> dict[str, Any] | None:
    if obj is None:
        return None
    if isinstance(obj, dict):
        return obj
    return obj.model_json_schema()


@dataclass
class Capability:
    quantity: str
    method: str
    fn: Callable[..., Any]
    parameters: SchemaLike
    result: SchemaLike
    spec: CapabilitySpec
    limitations: dict[str, Any] | list[Any] | Callable[[], Any]
    lease_seconds: float

    def parse_params(self, params: dict[str, Any]) -> Any:
        if isinstance(self.parameters, type) and issubclass(self.parameters, BaseModel):
            try:
                return self.parameters.model_validate(params)
            except ValidationError as exc:
                first = exc.errors()[0]
                raise InputError(f"{json_path(list(first['loc']))}: {first['msg']}") from None
        return params

    def dump_result(self, out: Any) -> dict[str, Any]:
        if isinstance(self.result, type) and issubclass(self.result, BaseModel):
            if not isinstance(out, self.result):
                out = self.result.model_validate(out)
            data = out.model_dump(mode="json", exclude_none=False)
        elif isinstance(out, BaseModel):
            data = out.model_dump(mode="json")
        else:
            data = out
        if not isinstance(data, dict):
            raise TypeError(
                f"{self.quantity}/{self.method} returned {type(data).__name__}, not an object"
            )
        errors = validate(self.spec.result_schema, data, ["data"])
        if errors:
            raise TypeError(
                f"the result breaks the result schema at {errors[0].path}: {errors[0].msg}"
            )
        return data

    def current_limitations(self) -> Any:
        return self.limitations() if callable(self.limitations) else self.limitations


@dataclass
class JobContext:
    """What a capability function may use while it runs."""

    request: dict[str, Any]
    method: str
    tenant_id: str
    client: BrokerClient | None
    capability: Capability
    software: dict[str, Any] | None = None
    provenance: dict[str, Any] = field(default_factory=dict)
    files: list[tuple[str, bytes, str]] = field(default_factory=list)
    _progress: dict[str, Any] | None = None
    _sub: int = 0

    @property
    def request_id(self) -> str:
        return str(self.request.get("id", ""))

    def progress(self, fraction: float | None = None, message: str = "") -> None:
        """Report progress; the lease renewal carries it to the broker."""
        self._progress = {
            "fraction": None if fraction is None else max(0.0, min(1.0, fraction)),
            "message": message[:2000],
        }

    def attach(
        self, name: str, content: bytes | str | Path, media_type: str = "application/octet-stream"
    ) -> None:
        """A raw data file to store with the result (a cycler export, a spectrum, a geometry)."""
        if isinstance(content, Path):
            content = content.read_bytes()
        elif isinstance(content, str):
            content = content.encode("utf-8")
        self.files.append((name, content, media_type))

    def submit(
        self, quantity: str, methods: str | list[str], parameters: dict[str, Any], **kwargs: Any
    ) -> dict[str, Any]:
        """Post a sub-request (a child of this request, in its campaign). Re-running the job
        after a crash posts the same sub-requests again and gets the first ones back."""
        if self.client is None:
            raise RuntimeError("sub-requests need a broker: this job runs locally")
        self._sub += 1
        return self.client.create_request(
            quantity,
            methods,
            parameters,
            tenant_id=self.tenant_id,
            parent_id=self.request_id or None,
            campaign_id=self.request.get("campaign_id"),
            idempotency_key=f"sub:{self.request_id}:{self._sub}",
            **kwargs,
        )

    def wait(self, request_id: str, timeout: float = 3600) -> dict[str, Any]:
        """The result of a sub-request (raises ``RequestFailed`` if it failed)."""
        if self.client is None:
            raise RuntimeError("sub-requests need a broker: this job runs locally")
        return self.client.wait_result(request_id, timeout=timeout)


class Tenant:
    """A set of typed capability functions with an identity."""

    def __init__(
        self,
        name: str,
        *,
        kind: TenantKind | str = TenantKind.simulation,
        description: str = "",
        software: dict[str, Any] | Callable[[], dict[str, Any]] | None = None,
        contact_person: str = "",
    ) -> None:
        self.name = name
        self.kind = TenantKind(kind)
        self.description = description
        self.contact_person = contact_person
        self._software = software
        self.capabilities: dict[tuple[str, str], Capability] = {}
        self._on_start: list[Callable[[], None]] = []
        self._started = False
        #: the state of the tenant's device(s), sent with every heartbeat as
        #: ``software.status`` (``None``: heartbeats carry nothing but the beat)
        self.status: Callable[[], dict[str, Any]] | None = None
        self._beat_now = threading.Event()

    def wake_heartbeat(self) -> None:
        """Send a heartbeat now (its status changed), not at the next 30 s tick."""
        self._beat_now.set()

    def heartbeat_software(self) -> dict[str, Any] | None:
        """What a heartbeat carries: the software record with the current status."""
        if self.status is None:
            return None
        try:
            status = self.status()
        except Exception as exc:  # a status that cannot be read is itself a status
            status = {"error": f"{type(exc).__name__}: {exc}"}
        return {**self.software, "status": status}

    @property
    def software(self) -> dict[str, Any]:
        sw = self._software() if callable(self._software) else self._software
        return Software.model_validate(sw or {"name": self.name}).model_dump()

    def capability(
        self,
        quantity: str,
        method: str,
        *,
        parameters: SchemaLike = None,
        result: SchemaLike = None,
        limitations: dict[str, Any] | list[Any] | Callable[[], Any] | None = None,
        description: str = "",
        units: dict[str, str] | None = None,
        iri: str | None = None,
        cost: float | None = None,
        fidelity: float | None = None,
        lease_seconds: float = 120.0,
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Register ``fn(params, ctx) -> result`` for ``(quantity, method)``.

        ``parameters``/``result``: pydantic models (the function gets and returns typed
        objects) or JSON Schemas (dicts). Without them the capability must be one of the
        FINALES capabilities that ship with bigmap, whose schemas are used.
        """

        def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
            if parameters is None or result is None:
                base = finales_capability(quantity, method)
                pschema = _schema_of(parameters) or base.parameter_schema
                rschema = _schema_of(result) or base.result_schema
            else:
                pschema, rschema = _schema_of(parameters), _schema_of(result)
            spec = CapabilitySpec(
                quantity=quantity,
                method=method,
                parameter_schema=pschema,
                result_schema=rschema,
                description=description or (fn.__doc__ or "").strip().split("\n\n")[0],
                units=units or {},
                iri=iri,
                cost=cost,
                fidelity=fidelity,
            )
            self.capabilities[(quantity, method)] = Capability(
                quantity, method, fn, parameters, result, spec, limitations or {}, lease_seconds
            )
            return fn

        return deco

    def on_start(self, fn: Callable[[], None]) -> Callable[[], None]:
        """Run ``fn`` once before serving (load a model, warm a cache)."""
        self._on_start.append(fn)
        return fn

    def start(self) -> None:
        if not self._started:
            for fn in self._on_start:
                fn()
            self._started = True

    def spec(self) -> TenantSpec:
        return TenantSpec(
            name=self.name,
            kind=self.kind,
            description=self.description,
            contact_person=self.contact_person,
            software=self.software,
            limitations=[
                Provides(quantity=c.quantity, method=c.method, limitations=c.current_limitations())
                for c in self.capabilities.values()
            ],
        )

    # ------------------------------------------------------------------ running jobs

    def run_local(
        self,
        quantity: str,
        method: str,
        params: dict[str, Any],
        *,
        request: dict[str, Any] | None = None,
        client: BrokerClient | None = None,
        tenant_id: str = "",
    ) -> tuple[dict[str, Any], JobContext]:
        """Run one capability here, without a broker: validated input, validated output."""
        self.start()
        cap = self.capabilities.get((quantity, method))
        if cap is None:
            raise KeyError(f"{self.name} does not provide {quantity}/{method}")
        ctx = JobContext(
            request=request or {"parameters": {method: params}},
            method=method,
            tenant_id=tenant_id,
            client=client,
            capability=cap,
            software=None,
        )
        out = cap.fn(cap.parse_params(params), ctx)
        return cap.dump_result(out), ctx

    def register(
        self, client: BrokerClient, *, replace_capabilities: bool = False
    ) -> dict[str, Any]:
        """Register the capabilities (when missing) and the tenant; returns the tenant.

        Registrations are idempotent: workers of the same tenant starting together all
        succeed. A 409 is retried once (a race with an older broker) before it is taken for
        what it says, a capability defined differently; a 403 names the right that is
        missing (defining a new capability is the role maintainer's)."""
        for cap in self.capabilities.values():
            doc = cap.spec.model_dump(mode="json")
            try:
                _once_more_on_conflict(
                    lambda doc=doc: client.add_capability(doc, replace=replace_capabilities)
                )
            except ConflictError as exc:
                raise RuntimeError(
                    f"the broker defines {cap.quantity}/{cap.method} differently from {self.name}: {exc.message}. "
                    "An admin can replace it (bigmap worker --replace-capabilities)."
                ) from None
            except AuthError as exc:
                if exc.status_code != 403:
                    raise
                raise RuntimeError(
                    f"tenant {self.name} cannot register {cap.quantity}/{cap.method}: {exc.message}"
                ) from None
        spec = self.spec().model_dump(mode="json")
        return _once_more_on_conflict(lambda: client.register_tenant(spec))

    def serve(
        self,
        client: BrokerClient,
        *,
        concurrency: int = 1,
        poll: float = 10.0,
        max_jobs: int | None = None,
        stop: threading.Event | None = None,
        grace: float = 5.0,
        replace_capabilities: bool = False,
        install_signals: bool = True,
    ) -> int:
        """Serve requests until ``stop`` is set (SIGTERM/SIGINT set it) or ``max_jobs`` are
        done. Returns the number of jobs finished."""
        return Worker(
            self,
            client,
            concurrency=concurrency,
            poll=poll,
            max_jobs=max_jobs,
            stop=stop,
            grace=grace,
            replace_capabilities=replace_capabilities,
        ).run(install_signals=install_signals)


class Worker:
    """Claim -> run -> post, with leases, heartbeats and a graceful stop."""

    def __init__(
        self,
        tenant: Tenant,
        client: BrokerClient,
        *,
        concurrency: int,
        poll: float,
        max_jobs: int | None,
        stop: threading.Event | None,
        grace: float,
        replace_capabilities: bool,
    ) -> None:
        self.tenant = tenant
        self.client = client
        self.concurrency = max(1, concurrency)
        self.poll = poll
        self.max_jobs = max_jobs
        self.stop = stop or threading.Event()
        self.grace = grace
        self.replace_capabilities = replace_capabilities
        self.tenant_id = ""
        self.done = 0
        self._running: dict[str, threading.Event] = {}
        self._lock = threading.Lock()

    def run(self, install_signals: bool = True) -> int:
        info = self.tenant.register(self.client, replace_capabilities=self.replace_capabilities)
        self.tenant_id = info["id"]
        for w in info.get("warnings", []):
            log.warning("%s", w)
        log.info(
            "tenant %s (%s) registered; serving %s",
            self.tenant.name,
            self.tenant_id,
            ", ".join(f"{q}/{m}" for q, m in self.tenant.capabilities),
        )
        self.tenant.start()
        if install_signals and threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, lambda *_: self.stop.set())
        beat = threading.Thread(target=self._heartbeat, daemon=True, name="bigmap-heartbeat")
        beat.start()
        # Jobs run in daemon threads: a stop must not wait for a calculation that cannot be
        # interrupted; its claim goes back to the queue instead.
        jobs: set[threading.Thread] = set()
        caps = list(self.tenant.capabilities)
        # claim with the shortest lease; each job's renewer sets its capability's own at once
        lease = min(c.lease_seconds for c in self.tenant.capabilities.values())
        try:
            while not self.stop.is_set():
                jobs = {t for t in jobs if t.is_alive()}
                busy = len(jobs)
                if (
                    self.max_jobs is not None and self.done + busy >= self.max_jobs
                ) or busy >= self.concurrency:
                    if self.max_jobs is not None and not busy and self.done >= self.max_jobs:
                        break
                    self.stop.wait(0.05)
                    continue
                try:
                    req = self.client.claim_next(
                        self.tenant_id,
                        capabilities=caps,
                        wait=min(self.poll, 30),
                        lease_seconds=lease,
                    )
                except (BrokerUnavailable, BrokerError) as exc:
                    log.warning("claiming failed: %s; retrying", exc)
                    self.stop.wait(2.0)
                    continue
                if req is None:
                    continue
                if self.stop.is_set():
                    self._release(req["id"], "tenant stopping")
                    break
                with self._lock:
                    self._running[req["id"]] = threading.Event()
                job = threading.Thread(
                    target=self._job, args=(req,), daemon=True, name=f"bigmap-job-{req['id'][:8]}"
                )
                jobs.add(job)
                job.start()
        finally:
            self.stop.set()
            self._shutdown(jobs)
        return self.done

    def _shutdown(self, jobs: set[threading.Thread]) -> None:
        deadline = time.monotonic() + self.grace
        for job in jobs:
            job.join(max(0.0, deadline - time.monotonic()))
        with self._lock:
            unfinished = list(self._running)
        for rid in unfinished:
            self._release(rid, "tenant stopped before the work was done (SIGTERM)")

    def _release(self, request_id: str, message: str) -> None:
        try:
            self.client.release(request_id, self.tenant_id, message)
            log.info("returned request %s to the queue", request_id)
        except (BrokerError, BrokerUnavailable) as exc:
            log.warning("could not return request %s: %s (its lease will expire)", request_id, exc)
        with self._lock:
            lost = self._running.pop(request_id, None)
        if lost is not None:
            lost.set()

    def _heartbeat(self) -> None:
        beat_now = self.tenant._beat_now
        if self.tenant.status is not None:
            beat_now.set()  # the first status at once
        last = 0.0
        while not self.stop.is_set():
            woken = beat_now.wait(30.0)
            if self.stop.is_set():
                break
            if woken:
                # status changes: at most one beat a second
                self.stop.wait(max(0.0, last + 1.0 - time.monotonic()))
                beat_now.clear()
            last = time.monotonic()
            try:
                self.client.heartbeat(self.tenant_id, self.tenant.heartbeat_software())
            except (BrokerError, BrokerUnavailable) as exc:
                log.warning("heartbeat failed: %s", exc)

    def _renewer(
        self, ctx: JobContext, lost: threading.Event, finished: threading.Event, lease: float
    ) -> None:
        every = max(0.5, min(lease / 3.0, 30.0))
        last_progress = None
        wait = 0.0  # renew at once: the claim was made with the tenant's shortest lease
        while not finished.wait(wait):
            wait = every
            try:
                progress = ctx._progress if ctx._progress != last_progress else None
                self.client.renew_lease(ctx.request_id, self.tenant_id, lease, progress)
                last_progress = ctx._progress
            except ConflictError:
                log.warning(
                    "lost the claim on %s (lease expired?); its result will not be posted",
                    ctx.request_id,
                )
                lost.set()
                return
            except (BrokerError, BrokerUnavailable) as exc:
                log.warning("lease renewal of %s failed: %s", ctx.request_id, exc)

    def _job(self, req: dict[str, Any]) -> None:
        rid = req["id"]
        method = req.get("claimed_method") or req["methods"][0]
        cap = self.tenant.capabilities[(req["quantity"], method)]
        with self._lock:
            lost = self._running.setdefault(rid, threading.Event())
        finished = threading.Event()
        ctx = JobContext(
            request=req, method=method, tenant_id=self.tenant_id, client=self.client, capability=cap
        )
        renewer = threading.Thread(
            target=self._renewer, args=(ctx, lost, finished, cap.lease_seconds), daemon=True
        )
        renewer.start()
        t0 = time.perf_counter()
        try:
            params = cap.parse_params(req["parameters"].get(method, {}))
            out = cap.fn(params, ctx)
            data = cap.dump_result(out)
        except TenantError as exc:
            self._post_failure(ctx, lost, str(exc) or type(exc).__name__, exc.kind)
        except Exception as exc:  # a calculation that failed: report, never drop silently
            log.debug("job %s failed:\n%s", rid, traceback.format_exc())
            self._post_failure(ctx, lost, f"{type(exc).__name__}: {exc}", "calculation_failed")
        else:
            self._post(ctx, lost, data, time.perf_counter() - t0)
        finally:
            finished.set()
            with self._lock:
                self._running.pop(rid, None)
                self.done += 1

    def _post(
        self, ctx: JobContext, lost: threading.Event, data: dict[str, Any], seconds: float
    ) -> None:
        if lost.is_set():  # lease lost, or returned to the queue on a stop
            return
        software = ctx.software or self.tenant.software
        provenance = {"runtime_seconds": round(seconds, 6), **ctx.provenance}
        key = f"{ctx.request_id}:{ctx.request.get('attempts', 0)}"
        try:
            self.client.post_result(
                ctx.request_id,
                self.tenant_id,
                data,
                method=ctx.method,
                software=software,
                provenance=provenance,
                files=ctx.files,
                idempotency_key=key,
            )
            log.info("posted the result of %s (%.2f s)", ctx.request_id, seconds)
        except ConflictError as exc:
            log.warning("result of %s not accepted: %s", ctx.request_id, exc.message)
        except BrokerError as exc:
            # the broker refused the data itself: report it as the request's failure
            self._post_failure(
                ctx, lost, f"the broker refused the result: {exc.message}", "invalid_result"
            )

    def _post_failure(
        self, ctx: JobContext, lost: threading.Event, message: str, kind: str
    ) -> None:
        if lost.is_set():
            return
        log.warning("request %s failed (%s): %s", ctx.request_id, kind, message)
        try:
            self.client.fail(ctx.request_id, self.tenant_id, message, kind=kind)
        except (BrokerError, BrokerUnavailable) as exc:
            log.warning("could not report the failure of %s: %s", ctx.request_id, exc)
