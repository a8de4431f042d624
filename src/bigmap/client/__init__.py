"""The client SDK and the tenant runtime. Importable without the server's dependencies."""

from bigmap.client.errors import (
    AuthError,
    BrokerError,
    BrokerUnavailable,
    CalculationFailed,
    ConflictError,
    InputError,
    NotFoundError,
    RateLimited,
    RequestFailed,
    TenantError,
    ValidationFailed,
)
from bigmap.client.http import BrokerClient
from bigmap.client.runtime import JobContext, Tenant, package_version

__all__ = [
    "AuthError",
    "BrokerClient",
    "BrokerError",
    "BrokerUnavailable",
    "CalculationFailed",
    "ConflictError",
    "InputError",
    "JobContext",
    "NotFoundError",
    "RateLimited",
    "RequestFailed",
    "Tenant",
    "TenantError",
    "ValidationFailed",
    "package_version",
]
