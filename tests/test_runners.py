"""Runner options: what the collector completes, passes on and refuses, per runner."""

from __future__ import annotations

import pytest

from awscollector.errors import CollectorError
from awscollector.pipelines.runners import runner_setup

FLINK = ["--runner=FlinkRunner", "--flink_master=127.0.0.1:8081",
         "--job_endpoint=127.0.0.1:8099",  # a running job server: no jar to fetch here
         "--environment_type=EXTERNAL", "--environment_config=127.0.0.1:50000"]


def args_of(setup) -> dict:
    return setup.options.get_all_options(retain_unknown_options=True)


def test_direct_runner_refuses_unknown_options():
    with pytest.raises(CollectorError) as err:
        runner_setup(["--checkpointing_interval=1000"])
    assert err.value.code == "RUN-004"
    assert "--checkpointing_interval" in err.value.message


def test_direct_runner_runs_one_worker():
    setup = runner_setup(["--direct_num_workers=4"])
    assert not setup.on_flink
    assert args_of(setup)["direct_num_workers"] == 1


def test_flink_gets_streaming_checkpoints_and_a_job_name():
    setup = runner_setup(FLINK + ["--parallelism=2"])
    got = args_of(setup)
    assert setup.on_flink and setup.parallelism == 2
    assert got["streaming"] is True
    assert got["finish_bundle_before_checkpointing"] is True
    assert got["checkpointing_interval"] == "10000"
    assert setup.job_name.startswith("aws-collector-") and got["job_name"] == setup.job_name
    assert setup.flink_master == "127.0.0.1:8081"


def test_flink_passes_the_job_servers_own_options_on():
    setup = runner_setup(FLINK + ["--checkpointing_interval=2500", "--job_name=mine",
                                  "--min_pause_between_checkpoints=500"])
    got = args_of(setup)
    assert got["checkpointing_interval"] == "2500"
    assert got["min_pause_between_checkpoints"] == "500"
    assert setup.job_name == "mine"


def test_flink_needs_to_know_where_python_runs():
    with pytest.raises(CollectorError) as err:
        runner_setup(["--runner=FlinkRunner", "--flink_master=127.0.0.1:8081",
                      "--job_endpoint=127.0.0.1:8099"])
    assert err.value.code == "RUN-004"
    assert "--environment_type=EXTERNAL" in err.value.message


@pytest.mark.parametrize("option", ["--unaligned_checkpoint_enabled",
                                    "--force_unaligned_checkpoint_enabled=true"])
def test_flink_refuses_unaligned_checkpoints(option):
    with pytest.raises(CollectorError) as err:
        runner_setup(FLINK + [option])
    assert err.value.code == "RUN-004"
    assert "aligned" in err.value.message
