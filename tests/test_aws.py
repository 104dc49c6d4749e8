"""ClientFactory against the embedded AWS (moto's server over real HTTP, no mocking)."""

from __future__ import annotations

import json
import pickle
import threading
import uuid
from collections.abc import Iterator
from types import SimpleNamespace

import pytest
from moto.sts.models import sts_backends
from pydantic import SecretStr

from awscollector.aws import ClientFactory
from awscollector.embedded.aws import EmbeddedAws
from awscollector.errors import CollectorError

ACCOUNT = "123456789012"  # moto's default account
OTHER_ACCOUNT = "210987654321"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def trust_policy(account: str, external_id: str | None = None) -> str:
    statement: dict = {
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
        "Action": "sts:AssumeRole",
    }
    if external_id:
        statement["Condition"] = {"StringEquals": {"sts:ExternalId": external_id}}
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


def make_role(iam, name: str, account: str, external_id: str | None = None) -> str:
    return iam.create_role(
        RoleName=name, AssumeRolePolicyDocument=trust_policy(account, external_id)
    )["Role"]["Arn"]


def last_assumed(role_arn: str):
    """What moto's STS recorded for the last AssumeRole of role_arn (server state, read only)."""
    account = role_arn.split(":")[4]
    roles = [r for r in sts_backends[account]["aws"].assumed_roles if r.role_arn == role_arn]
    return roles[-1] if roles else None


def assume_count(role_arn: str) -> int:
    account = role_arn.split(":")[4]
    return sum(r.role_arn == role_arn for r in sts_backends[account]["aws"].assumed_roles)


@pytest.fixture
def user_keys(embedded_aws: EmbeddedAws) -> tuple[str, str, str]:
    iam = embedded_aws.client("iam")
    name = unique("collector")
    arn = iam.create_user(UserName=name)["User"]["Arn"]
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return arn, key["AccessKeyId"], key["SecretAccessKey"]


@pytest.fixture
def no_default_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    """Nothing for the default chain to find: no env keys, files, container or IMDS."""
    for name in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_ROLE_ARN",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")


# -- credentials ---------------------------------------------------------------------


def test_default_credential_chain(embedded_aws, no_default_credentials, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    factory = ClientFactory(endpoint_url=embedded_aws.endpoint_url)
    assert factory.identity()["Account"] == ACCOUNT
    creds = factory.session().get_credentials().get_frozen_credentials()
    assert creds.access_key == "testing"


def test_no_credentials_anywhere_is_aws_001(embedded_aws, no_default_credentials):
    factory = ClientFactory(endpoint_url=embedded_aws.endpoint_url)
    with pytest.raises(CollectorError) as err:
        factory.client("sqs", "us-east-1")
    assert err.value.code == "AWS-001"


def test_access_key_without_secret_is_aws_001():
    with pytest.raises(CollectorError) as err:
        ClientFactory(access_key="AKIAEXAMPLE").client("sqs", "us-east-1")
    assert err.value.code == "AWS-001"


def test_access_key_and_secret(embedded_aws, user_keys):
    user_arn, key_id, secret = user_keys
    factory = ClientFactory(
        endpoint_url=embedded_aws.endpoint_url, access_key=key_id, access_secret=secret
    )
    assert factory.identity()["Arn"] == user_arn


def test_base_assume_role(embedded_aws, user_keys):
    _, key_id, secret = user_keys
    role = make_role(embedded_aws.client("iam"), unique("reader"), ACCOUNT)
    factory = ClientFactory(
        endpoint_url=embedded_aws.endpoint_url,
        access_key=key_id,
        access_secret=secret,
        base_assume_role=role,
    )
    name = role.split("/")[-1]
    expected = f"arn:aws:sts::{ACCOUNT}:assumed-role/{name}/devo-aws-collector"
    assert factory.identity()["Arn"] == expected
    assert last_assumed(role).external_id is None


def test_base_assume_role_alone_takes_the_external_id(embedded_aws, user_keys):
    """With no target role, the base role is the one whose trust policy asks for the id."""
    _, key_id, secret = user_keys
    role = make_role(embedded_aws.client("iam"), unique("reader"), ACCOUNT, "ext-base-1")
    factory = ClientFactory(
        endpoint_url=embedded_aws.endpoint_url,
        access_key=key_id,
        access_secret=secret,
        base_assume_role=role,
        external_id="ext-base-1",
    )
    assert factory.identity()["Arn"].endswith(f"{role.split('/')[-1]}/devo-aws-collector")
    assert last_assumed(role).external_id == "ext-base-1"


def other_account_iam(embedded_aws: EmbeddedAws):
    """An IAM client in another account: moto lets any role ARN be assumed."""
    admin = ClientFactory(
        endpoint_url=embedded_aws.endpoint_url,
        access_key="testing",
        access_secret="testing",
        base_assume_role=f"arn:aws:iam::{OTHER_ACCOUNT}:role/admin",
    )
    return admin.client("iam", "us-east-1")


def test_target_assume_role_with_external_id(embedded_aws, user_keys):
    _, key_id, secret = user_keys
    external_id = unique("ext")
    name = unique("devo-reader")
    role = make_role(other_account_iam(embedded_aws), name, ACCOUNT, external_id)
    assert role == f"arn:aws:iam::{OTHER_ACCOUNT}:role/{name}"
    factory = ClientFactory(
        endpoint_url=embedded_aws.endpoint_url,
        access_key=key_id,
        access_secret=secret,
        target_assume_role=role,
        external_id=external_id,
    )
    found = factory.identity()
    assert found["Account"] == OTHER_ACCOUNT
    assert found["Arn"] == f"arn:aws:sts::{OTHER_ACCOUNT}:assumed-role/{name}/devo-aws-collector"
    assert last_assumed(role).external_id == external_id  # the ExternalId reached STS


def test_target_assumed_from_base_role(embedded_aws, user_keys):
    _, key_id, secret = user_keys
    base = make_role(embedded_aws.client("iam"), unique("hop"), ACCOUNT)
    name = unique("devo-reader")
    target = make_role(other_account_iam(embedded_aws), name, ACCOUNT, "ext-id-1")
    factory = ClientFactory(
        endpoint_url=embedded_aws.endpoint_url,
        access_key=key_id,
        access_secret=secret,
        base_assume_role=base,
        target_assume_role=target,
        external_id="ext-id-1",
    )
    assert factory.identity()["Arn"].endswith(f":assumed-role/{name}/devo-aws-collector")
    assert last_assumed(base).external_id is None  # the external id goes to the target only
    assert last_assumed(target).external_id == "ext-id-1"


def test_one_char_external_id_is_refused(embedded_aws):
    factory = ClientFactory(
        endpoint_url=embedded_aws.endpoint_url,
        access_key="testing",
        access_secret="testing",
        target_assume_role=f"arn:aws:iam::{OTHER_ACCOUNT}:role/devo-reader",
        external_id="Q",
    )
    with pytest.raises(CollectorError) as err:
        factory.client("s3", "us-east-1")
    assert err.value.code == "AWS-002"
    assert "ExternalId" in err.value.message
    assert "role/devo-reader: " in err.value.message
    assert "Q" not in err.value.message


def test_assumed_credentials_refresh_before_expiry(embedded_aws):
    role = make_role(embedded_aws.client("iam"), unique("short"), ACCOUNT)

    def factory(duration: int) -> ClientFactory:
        return ClientFactory(
            endpoint_url=embedded_aws.endpoint_url,
            access_key="testing",
            access_secret="testing",
            base_assume_role=role,
            role_duration_seconds=duration,
        )

    # 900 s is inside botocore's 15-minute advisory window: every use assumes the role again.
    short = factory(900)
    creds = short.session().get_credentials()
    before = assume_count(role)
    first = creds.get_frozen_credentials().access_key
    second = creds.get_frozen_credentials().access_key
    assert first != second
    assert assume_count(role) == before + 2  # two more AssumeRole calls reached STS
    assert short.identity()["Arn"].endswith(f"/{role.split('/')[-1]}/devo-aws-collector")

    # An hour-long session is reused as is.
    long = factory(3600)
    creds = long.session().get_credentials()
    before = assume_count(role)
    assert creds.get_frozen_credentials().access_key == creds.get_frozen_credentials().access_key
    assert assume_count(role) == before


# -- refusals from an IAM-enforcing server -------------------------------------------


@pytest.fixture(scope="module")
def enforcing_aws() -> Iterator[tuple[EmbeddedAws, str, str]]:
    """A separate moto server that checks IAM after its first 3 actions.

    Those 3 create a user allowed only sts:GetCallerIdentity, and its access key.
    """
    aws = EmbeddedAws(in_process=False, env={"INITIAL_NO_AUTH_ACTION_COUNT": "3"}).start()
    try:
        iam = aws.client("iam")
        iam.create_user(UserName="weak")
        key = iam.create_access_key(UserName="weak")["AccessKey"]
        policy = {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "sts:GetCallerIdentity", "Resource": "*"}],
        }
        iam.put_user_policy(UserName="weak", PolicyName="id", PolicyDocument=json.dumps(policy))
        yield aws, key["AccessKeyId"], key["SecretAccessKey"]
    finally:
        aws.stop()


def test_assume_role_refused_is_aws_002(enforcing_aws):
    aws, key_id, secret = enforcing_aws
    role = f"arn:aws:iam::{ACCOUNT}:role/reader"
    factory = ClientFactory(
        endpoint_url=aws.endpoint_url,
        access_key=key_id,
        access_secret=secret,
        target_assume_role=role,
        external_id="very-secret-external-id",
    )
    with pytest.raises(CollectorError) as err:
        factory.client("sqs", "us-east-1")
    assert err.value.code == "AWS-002"
    assert err.value.message.startswith(f"cannot assume role {role}: AccessDenied")
    assert "very-secret-external-id" not in str(err.value)
    assert secret not in str(err.value)


def test_invalid_credentials_are_aws_001(enforcing_aws):
    aws, key_id, _ = enforcing_aws
    for bad in (
        ClientFactory(
            endpoint_url=aws.endpoint_url, access_key="AKIAUNKNOWN0000", access_secret="x"
        ),
        ClientFactory(endpoint_url=aws.endpoint_url, access_key=key_id, access_secret="wrong"),
    ):
        with pytest.raises(CollectorError) as err:
            bad.identity()
        assert err.value.code == "AWS-001"
    refused = ClientFactory(
        endpoint_url=aws.endpoint_url,
        access_key="AKIAUNKNOWN0000",
        access_secret="x",
        base_assume_role=f"arn:aws:iam::{ACCOUNT}:role/reader",
    )
    with pytest.raises(CollectorError) as err:
        refused.client("sqs", "us-east-1")
    assert err.value.code == "AWS-001"  # bad keys, not a refused role


def test_allowed_identity_on_enforcing_server(enforcing_aws):
    aws, key_id, secret = enforcing_aws
    factory = ClientFactory(endpoint_url=aws.endpoint_url, access_key=key_id, access_secret=secret)
    assert factory.identity()["Arn"] == f"arn:aws:iam::{ACCOUNT}:user/weak"


# -- clients -------------------------------------------------------------------------


def test_clients_are_cached_per_service_and_region(embedded_aws):
    factory = ClientFactory(
        endpoint_url=embedded_aws.endpoint_url, access_key="testing", access_secret="testing"
    )
    first = factory.client("sqs", "us-east-1")
    assert factory.client("sqs", "us-east-1") is first
    assert factory.client("sqs", "eu-west-1") is not first
    assert factory.client("s3", "us-east-1") is not first


def test_client_cache_is_thread_safe(embedded_aws):
    factory = ClientFactory(
        endpoint_url=embedded_aws.endpoint_url, access_key="testing", access_secret="testing"
    )
    found: list = []
    start = threading.Barrier(8)

    def grab() -> None:
        start.wait()
        found.append(factory.client("s3", "us-west-2"))

    threads = [threading.Thread(target=grab) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(found) == 8 and all(c is found[0] for c in found)


def test_retries_timeouts_and_pool_size():
    factory = ClientFactory(access_key="testing", access_secret="testing", max_pool_connections=42)
    config = factory.client("sqs", "us-east-1").meta.config
    # 10 attempts in all, the first call included (docs/errors.md says so)
    assert config.retries == {"mode": "adaptive", "total_max_attempts": 10}
    assert config.max_pool_connections == 42
    assert (config.connect_timeout, config.read_timeout) == (10, 60)


def test_endpoint_url_is_applied(embedded_aws):
    factory = ClientFactory(
        endpoint_url=embedded_aws.endpoint_url, access_key="testing", access_secret="testing"
    )
    sqs = factory.client("sqs", "eu-west-1")
    assert sqs.meta.endpoint_url == embedded_aws.endpoint_url
    name = unique("queue")
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    assert name in url
    assert url in sqs.list_queues(QueueNamePrefix=name)["QueueUrls"]


def test_without_endpoint_url_clients_use_aws():
    factory = ClientFactory(access_key="testing", access_secret="testing")
    assert factory.client("sqs", "eu-west-1").meta.endpoint_url.endswith(".amazonaws.com")


# -- secrets, config, pickling, sharing ----------------------------------------------


def test_repr_hides_secrets():
    factory = ClientFactory(
        endpoint_url="http://127.0.0.1:1",
        access_key="AKIAEXAMPLEKEY",
        access_secret="wJalrXUtnFEMI-secret",
        base_assume_role="arn:aws:iam::123456789012:role/base",
        target_assume_role="arn:aws:iam::210987654321:role/target",
        external_id="external-secret",
    )
    for text in (repr(factory), str(factory)):
        assert "http://127.0.0.1:1" in text
        assert "arn:aws:iam::123456789012:role/base" in text
        assert "arn:aws:iam::210987654321:role/target" in text
        for secret in ("wJalrXUtnFEMI-secret", "external-secret", "AKIAEXAMPLEKEY"):
            assert secret not in text


def test_secrets_echoed_in_an_error_are_redacted():
    # AWS validation errors may echo a parameter; moto does not, so check the filter itself.
    factory = ClientFactory(
        access_key="AKIAEXAMPLEKEY", access_secret="the-secret-key", external_id="the-ext-id"
    )
    text = factory._redact("Value 'the-ext-id' at 'externalId'; key the-secret-key")
    assert text == "Value '***' at 'externalId'; key ***"


def test_from_config_reads_secret_strings(embedded_aws):
    role = make_role(embedded_aws.client("iam"), unique("cfg"), ACCOUNT)
    aws_input = SimpleNamespace(
        endpoint_url=embedded_aws.endpoint_url,
        credentials=SimpleNamespace(
            access_key=SecretStr("testing"),
            access_secret=SecretStr("testing"),
            base_assume_role=role,
            target_assume_role=None,
            assume_role_external_id=None,
        ),
    )
    factory = ClientFactory.from_config(aws_input, max_pool_connections=5)
    assert factory.identity()["Arn"].endswith(f"/{role.split('/')[-1]}/devo-aws-collector")
    assert factory.client("s3", "us-east-1").meta.config.max_pool_connections == 5


def test_from_config_without_credentials_block():
    factory = ClientFactory.from_config(SimpleNamespace(endpoint_url=None, credentials=None))
    assert repr(factory) == (
        "ClientFactory(endpoint_url=None, base_assume_role=None, target_assume_role=None)"
    )


def test_pickles_without_sessions_or_clients(embedded_aws):
    factory = ClientFactory(
        endpoint_url=embedded_aws.endpoint_url, access_key="testing", access_secret="testing"
    )
    factory.client("sqs", "us-east-1")  # live clients and locks must not travel
    copy = pickle.loads(pickle.dumps(factory))
    assert repr(copy) == repr(factory)
    assert copy.identity()["Account"] == ACCOUNT


def test_access_gives_one_factory_per_process_to_every_copy(embedded_aws):
    from awscollector.io.access import AwsAccess

    aws_input = SimpleNamespace(endpoint_url=embedded_aws.endpoint_url, credentials=None)
    access = AwsAccess(aws_input)
    first, second = pickle.loads(pickle.dumps(access)), pickle.loads(pickle.dumps(access))
    assert first.factory() is second.factory()  # copies in one process share it
    assert AwsAccess(aws_input).factory() is not first.factory()  # another run: its own
    assert pickle.loads(pickle.dumps(first))._factory is None  # no clients travel


# -- the embedded AWS itself ---------------------------------------------------------


def test_embedded_aws_listens_on_loopback(embedded_aws):
    assert embedded_aws.endpoint_url.startswith("http://127.0.0.1:")


def test_embedded_aws_env_needs_a_subprocess():
    with pytest.raises(ValueError):
        EmbeddedAws(in_process=True, env={"INITIAL_NO_AUTH_ACTION_COUNT": "1"})


def test_embedded_aws_subprocess_starts_and_stops():
    with EmbeddedAws(in_process=False) as aws:
        assert aws.client("sqs").list_queues().get("QueueUrls", []) == []
        process = aws._process
    assert process is not None and process.poll() is not None
