"""One factory for every boto3 client: credentials, assumed roles, endpoint, retries.

    factory = ClientFactory.from_config(config.inputs.aws)
    sqs = factory.client("sqs", "eu-west-1")     # cached per (service, region)
    print(factory.identity()["Arn"])             # who the collector runs as

In Beam DoFns, reach it through `awscollector.io.access.AwsAccess`, so that each
worker process keeps one factory (one set of connection pools and credentials).

Assumed-role credentials refresh themselves (botocore's RefreshableCredentials) before
they expire, so a run may last longer than the role's session. No secret (secret key,
session token, external id) ever appears in a message, a log line or a repr.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import boto3
import botocore.session
from botocore.config import Config
from botocore.credentials import RefreshableCredentials
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    NoCredentialsError,
    ParamValidationError,
    PartialCredentialsError,
)

from awscollector.awserrors import (
    CREDENTIAL_ERROR_CODES,
    error_code,
    error_text,
    register_error_reader,
)
from awscollector.errors import CollectorError

log = logging.getLogger(__name__)

STS_REGION = "us-east-1"  # STS used for AssumeRole when the base session names no region

class ClientFactory:
    """Builds (and caches) boto3 clients that share one set of credentials."""

    def __init__(
        self,
        *,
        endpoint_url: str | None = None,
        access_key: str | None = None,
        access_secret: str | None = None,
        base_assume_role: str | None = None,
        target_assume_role: str | None = None,
        external_id: str | None = None,
        max_pool_connections: int = 10,
        session_name: str = "devo-aws-collector",
        role_duration_seconds: int = 3600,
    ) -> None:
        # Only plain values here: the factory is built inside workers and may be
        # pickled; sessions and clients are made lazily.
        self.endpoint_url = endpoint_url or None
        self._access_key = access_key or None
        self._access_secret = access_secret or None
        self.base_assume_role = base_assume_role or None
        self.target_assume_role = target_assume_role or None
        self._external_id = external_id or None
        self.max_pool_connections = max_pool_connections
        self.session_name = session_name
        self.role_duration_seconds = role_duration_seconds
        self._init_runtime()

    def _init_runtime(self) -> None:
        self._lock = threading.RLock()
        self._session: boto3.Session | None = None
        self._clients: dict[tuple[str, str], Any] = {}

    @classmethod
    def from_config(cls, aws_input: Any, max_pool_connections: int = 10) -> ClientFactory:
        """From the config's `inputs.aws` (duck-typed: endpoint_url and credentials)."""
        creds = getattr(aws_input, "credentials", None)
        endpoint = getattr(aws_input, "endpoint_url", None)
        return cls(
            endpoint_url=str(endpoint) if endpoint else None,
            access_key=_plain(getattr(creds, "access_key", None)),
            access_secret=_plain(getattr(creds, "access_secret", None)),
            base_assume_role=_plain(getattr(creds, "base_assume_role", None)),
            target_assume_role=_plain(getattr(creds, "target_assume_role", None)),
            external_id=_plain(getattr(creds, "assume_role_external_id", None)),
            max_pool_connections=max_pool_connections,
        )

    @property
    def config(self) -> Config:
        return Config(
            retries={"mode": "adaptive", "total_max_attempts": 10},
            max_pool_connections=self.max_pool_connections,
            connect_timeout=10,
            read_timeout=60,
        )

    def session(self) -> boto3.Session:
        """The boto3 session of the final identity (after any assumed role)."""
        with self._lock:
            if self._session is None:
                self._session = self._build_session()
            return self._session

    def client(self, service: str, region: str) -> Any:
        """A boto3 client, the same object for the same (service, region)."""
        key = (service, region)
        with self._lock:  # boto3 sessions are not safe to create clients from concurrently
            cached = self._clients.get(key)
            if cached is None:
                cached = register_error_reader(self.session().client(
                    service,
                    region_name=region,
                    endpoint_url=self.endpoint_url,
                    config=self.config,
                ))
                self._clients[key] = cached
            return cached

    def identity(self, region: str = "us-east-1") -> dict:
        """sts:GetCallerIdentity of the final identity: UserId, Account, Arn."""
        try:
            found = self.client("sts", region).get_caller_identity()
        except ClientError as exc:
            if error_code(exc) in CREDENTIAL_ERROR_CODES:
                raise CollectorError(
                    "AWS-001", self._redact(f"invalid AWS credentials: {error_text(exc)}")
                ) from None
            raise
        except (NoCredentialsError, PartialCredentialsError) as exc:
            raise CollectorError(
                "AWS-001", self._redact(f"no usable AWS credentials: {exc}")
            ) from None
        return {k: v for k, v in found.items() if k != "ResponseMetadata"}

    # -- building the session -------------------------------------------------------

    def _build_session(self) -> boto3.Session:
        session = self._base_session()
        if self.base_assume_role:
            # The external id is the target role's; with no target, the base role is the
            # one that asks for it.
            base_id = None if self.target_assume_role else self._external_id
            session = self._assumed_session(session, self.base_assume_role, base_id)
        if self.target_assume_role:
            session = self._assumed_session(session, self.target_assume_role, self._external_id)
        return session

    def _base_session(self) -> boto3.Session:
        if bool(self._access_key) != bool(self._access_secret):
            raise CollectorError("AWS-001", "access_key and access_secret must be given together")
        if self._access_key:
            session = boto3.Session(
                aws_access_key_id=self._access_key, aws_secret_access_key=self._access_secret
            )
        else:
            session = boto3.Session()  # the default chain: env, profile, container, IMDS
        try:
            found = session.get_credentials()
        except BotoCoreError as exc:  # e.g. a broken profile or credential_process
            raise CollectorError(
                "AWS-001", self._redact(f"cannot load AWS credentials: {exc}")
            ) from None
        if found is None:
            raise CollectorError(
                "AWS-001",
                "no AWS credentials found: set inputs.aws.credentials or configure the "
                "default AWS credential chain (environment, profile, instance role)",
            )
        return session

    def _assumed_session(
        self, source: boto3.Session, role_arn: str, external_id: str | None
    ) -> boto3.Session:
        sts = register_error_reader(source.client(
            "sts",
            region_name=source.region_name or STS_REGION,
            endpoint_url=self.endpoint_url,
            config=self.config,
        ))

        def assume() -> dict:
            # Called now and again by botocore whenever the credentials near expiry.
            return self._assume(sts, role_arn, external_id)

        credentials = RefreshableCredentials.create_from_metadata(
            metadata=assume(), refresh_using=assume, method="assume-role"
        )
        core = botocore.session.Session()
        core._credentials = credentials  # botocore has no public setter for this
        return boto3.Session(botocore_session=core)

    def _assume(self, sts: Any, role_arn: str, external_id: str | None) -> dict:
        params: dict[str, Any] = {
            "RoleArn": role_arn,
            "RoleSessionName": self.session_name,
            "DurationSeconds": self.role_duration_seconds,
        }
        if external_id:
            params["ExternalId"] = external_id
        try:
            found = sts.assume_role(**params)
        except ClientError as exc:
            code = "AWS-001" if error_code(exc) in CREDENTIAL_ERROR_CODES else "AWS-002"
            raise CollectorError(
                code, self._redact(f"cannot assume role {role_arn}: {error_text(exc)}")
            ) from None
        except ParamValidationError as exc:  # refused before sending, e.g. ExternalId too short
            report = exc.kwargs.get("report", str(exc)).replace("\n", "; ")
            raise CollectorError(
                "AWS-002", self._redact(f"cannot assume role {role_arn}: {report}")
            ) from None
        except (NoCredentialsError, PartialCredentialsError) as exc:
            raise CollectorError(
                "AWS-001", self._redact(f"cannot assume role {role_arn}: {exc}")
            ) from None
        creds = found["Credentials"]
        log.debug("assumed role %s until %s", role_arn, creds["Expiration"])
        return {
            "access_key": creds["AccessKeyId"],
            "secret_key": creds["SecretAccessKey"],
            "token": creds["SessionToken"],
            "expiry_time": creds["Expiration"].isoformat(),
        }

    def _redact(self, text: str) -> str:
        # AWS validation messages may echo a parameter back; never let a secret through.
        for secret in (self._access_secret, self._external_id):
            if secret:
                text = text.replace(secret, "***")
        return text

    # -- pickling and repr ----------------------------------------------------------

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        for runtime in ("_lock", "_session", "_clients"):
            state.pop(runtime, None)
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._init_runtime()

    def __repr__(self) -> str:
        return (
            f"ClientFactory(endpoint_url={self.endpoint_url!r}, "
            f"base_assume_role={self.base_assume_role!r}, "
            f"target_assume_role={self.target_assume_role!r})"
        )


def _plain(value: Any) -> str | None:
    """The value of a pydantic SecretStr, or a plain string, or None."""
    if value is None:
        return None
    if hasattr(value, "get_secret_value"):
        return value.get_secret_value()
    return str(value)

