"""Load and validate the collector's YAML config.

Every problem found is reported at once, each with a stable code (docs/errors.md) and
the dotted path of the value as the user wrote it::

    from awscollector.config import ConfigError, load_config, summary

    try:
        config = load_config("config.yaml")
    except ConfigError as err:
        print(err)                      # "CFG-007 inputs.aws.services.cisco-umbrella: ..."
        raise SystemExit(2) from None
    print(summary(config))              # "config OK: 3 services, 2 regions"
    config.globals_.persistence.type    # "filesystem"; `config.globals` is the same object
    aws = config.inputs.aws
    for name, service in aws.enabled_services().items():
        print(name, aws.regions_for(name), service.sqs_queue_name, service.readers)

Where things are:
- loading.py: YAML (duplicate keys: CFG-001), `${NAME}` (CFG-002), `parse_config`,
  `load_config`.
- problems.py: `Problem`, `ConfigError`, and pydantic's errors as problems at the
  user's dotted paths.
- base.py: the model base and small types; globals.py, outputs.py, inputs.py, root.py:
  the blocks of the file.
- services/: one module per service, each declaring its options (and its `TYPES`)
  once; services/base.py has what they share.

Notes:
- The `globals` block is the field `Config.globals_` (alias "globals", because a field
  named `globals` would shadow the builtin inside the class); the read-only property
  `Config.globals` returns the same object.
- Every service is a subclass of `ServiceConfig`. Any service's option can be read on
  any service: the ones a service does not take are None. `ServiceConfig.name` is the
  service name.
- Persistence and dead letter are `FilesystemPersistence`/`S3Persistence` and
  `FilesystemDeadLetter`/`SqsDeadLetter` (bases `Persistence`, `DeadLetter`); branch on
  `.type` and read `.config.directory_name`, `.config.bucket`/`.prefix`, `.config.queue_url`.
- Outputs are `DevoOutput` (type devo_platform: syslog over TLS) or `DevoHttpOutput`
  (type devo_http: Devo's HTTP endpoint); branch on `.type`.
- Certificate paths (`chain`, `cert`, `key`) are stored absolute, resolved against the
  config file's directory. Naive `start_time` values are taken as UTC.
- Secrets (`access_key`, `access_secret`, `assume_role_external_id`, an HTTP output's
  `token`) are SecretStr: read them with `.get_secret_value()`. Dumps (`model_dump`,
  `masked_dict`) show "***".
- `${NAME}` is replaced from the environment in every string value; `$${NAME}` gives a
  literal `${NAME}`.
"""

from __future__ import annotations

from awscollector.config.globals import (
    DeadLetter,
    FilesystemConfig,
    FilesystemDeadLetter,
    FilesystemPersistence,
    Globals,
    Persistence,
    S3Config,
    S3Persistence,
    SqsDeadLetter,
    SqsQueueConfig,
)
from awscollector.config.inputs import AwsInput, Credentials, Inputs
from awscollector.config.loading import load_config, parse_config
from awscollector.config.outputs import DevoConfig, DevoHttpConfig, DevoHttpOutput, DevoOutput
from awscollector.config.problems import ConfigError, Problem
from awscollector.config.root import Config, summary
from awscollector.config.services import (
    SERVICES,
    AuditEventsAll,
    CiscoUmbrella,
    CloudwatchLogs,
    CustomS3,
    CustomS3Source,
    Guardduty,
    MetricsAll,
    NonCloudwatchLogs,
    ServiceConfig,
    ServiceEventsAll,
    SqsCloudwatchConsumer,
)

__all__ = [
    "AuditEventsAll",
    "AwsInput",
    "CiscoUmbrella",
    "CloudwatchLogs",
    "Config",
    "ConfigError",
    "Credentials",
    "CustomS3",
    "CustomS3Source",
    "DeadLetter",
    "DevoConfig",
    "DevoHttpConfig",
    "DevoHttpOutput",
    "DevoOutput",
    "FilesystemConfig",
    "FilesystemDeadLetter",
    "FilesystemPersistence",
    "Globals",
    "Guardduty",
    "Inputs",
    "MetricsAll",
    "NonCloudwatchLogs",
    "Persistence",
    "Problem",
    "S3Config",
    "S3Persistence",
    "SERVICES",
    "ServiceConfig",
    "ServiceEventsAll",
    "SqsCloudwatchConsumer",
    "SqsDeadLetter",
    "SqsQueueConfig",
    "load_config",
    "parse_config",
    "summary",
]
