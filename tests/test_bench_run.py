"""The bench runner records each result's command without the machine's scratch path."""

from bench.run import recorded_command


def test_recorded_command_drops_the_workdir():
    argv = ["--only", "recommend", "--personas", "1000000", "--workdir", "/scratch/bench-rec"]
    assert recorded_command(argv) == "python -m bench.run --only recommend --personas 1000000"
    assert recorded_command(["--scale", "--workdir=/scratch/x", "--scales", "1000000"]) == (
        "python -m bench.run --scale --scales 1000000"
    )
    assert recorded_command([]) == "python -m bench.run"
