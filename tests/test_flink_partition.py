"""Where Flink places the SQS readers: our port of Beam's key encoding and Flink's key
hashing, checked against the real Java code of the job server's classpath."""

from __future__ import annotations

import random
import shutil
import subprocess

import pytest

from awscollector.flink.partition import spread_keys, subtask

READERS = [f"non-cloudwatch-logs|{region}|aws-logs|{n}"
           for region in ("us-east-1", "eu-west-1") for n in range(3)]


@pytest.mark.parametrize("parallelism", [2, 3, 4, 6])
def test_spread_keys_put_the_readers_on_every_subtask_in_turn(parallelism):
    keys = spread_keys(READERS, parallelism)
    assert [subtask(k, parallelism) for k in keys] == [
        i % parallelism for i in range(len(READERS))]
    assert [k.rsplit("#", 1)[0] for k in keys] == READERS  # the reader's name, suffixed


def test_max_parallelism_changes_the_placement_and_is_honoured():
    keys = spread_keys(READERS, 2, max_parallelism=256)
    assert [subtask(k, 2, 256) for k in keys] == [0, 1, 0, 1, 0, 1]


JAVA = """
import java.nio.ByteBuffer;
import org.apache.beam.sdk.coders.StringUtf8Coder;
import org.apache.beam.runners.flink.translation.wrappers.streaming.FlinkKeyUtils;
import org.apache.flink.runtime.state.KeyGroupRangeAssignment;
public class KeyPlacement {
  public static void main(String[] args) throws Exception {
    int parallelism = Integer.parseInt(args[0]);
    int groups = KeyGroupRangeAssignment.computeDefaultMaxParallelism(parallelism);
    java.io.BufferedReader in = new java.io.BufferedReader(
        new java.io.InputStreamReader(System.in, "UTF-8"));
    for (String line; (line = in.readLine()) != null; ) {
      ByteBuffer key = FlinkKeyUtils.encodeKey(line, StringUtf8Coder.of());
      System.out.println(KeyGroupRangeAssignment.assignKeyToParallelOperator(
          key, groups, parallelism));
    }
  }
}
"""


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("javac") is None, reason="needs a JDK")
def test_placement_matches_beams_flink_runner(tmp_path):
    from awscollector.flink.jobserver import job_server_classpath

    classpath = job_server_classpath()  # fetched with Maven on first use
    (tmp_path / "KeyPlacement.java").write_text(JAVA)
    subprocess.run(["javac", "-cp", classpath, "KeyPlacement.java"], cwd=tmp_path, check=True)
    rnd = random.Random(7)
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789|#-_.:/ éü€"
    keys = spread_keys(READERS, 4) + [
        "".join(rnd.choice(alphabet) for _ in range(rnd.randrange(0, 200))) for _ in range(300)]
    for parallelism in (1, 2, 3, 4, 7, 100):
        done = subprocess.run(["java", "-cp", f"{tmp_path}:{classpath}", "KeyPlacement",
                               str(parallelism)], input="\n".join(keys) + "\n",
                              capture_output=True, text=True, check=True)
        assert [int(x) for x in done.stdout.split()] == [
            subtask(k, parallelism) for k in keys], parallelism
