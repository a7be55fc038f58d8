"""parallel.py: ordered results, bounded look-ahead, errors reach the caller.

The multi-process checks run in a fresh interpreter: other test files load TensorFlow into this one,
and forking a process that runs TensorFlow's threads is not safe.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from colorize.core.parallel import ordered_map


def test_one_worker_maps_in_order_and_lazily():
    consumed = []

    def items():
        for i in range(10):
            consumed.append(i)
            yield i

    results = ordered_map(lambda x: x * x, items(), workers=1)
    assert next(results) == 0 and consumed == [0]
    assert list(results) == [i * i for i in range(1, 10)]


def test_one_worker_raises_the_functions_error():
    def fail_on_three(x: int) -> int:
        if x == 3:
            raise ValueError("three")
        return x

    results = ordered_map(fail_on_three, range(5), workers=1)
    assert [next(results) for _ in range(3)] == [0, 1, 2]
    with pytest.raises(ValueError, match="three"):
        next(results)


POOL_SCRIPT = textwrap.dedent("""
    import json, time
    from colorize.core.parallel import ordered_map

    def slow_square(x):
        time.sleep(0.02 * (5 - x % 5))  # later items finish first
        return x * x

    def fail_on_three(x):
        if x == 3:
            raise ValueError("three")
        return x

    consumed = []
    def items():
        for i in range(12):
            consumed.append(i)
            yield i

    # Workers start from a forkserver and import this file: the work must sit behind the main guard.
    if __name__ == "__main__":
        results = ordered_map(slow_square, items(), workers=2, window=3)
        first = next(results)
        consumed_at_first = len(consumed)
        rest = list(results)
        try:
            list(ordered_map(fail_on_three, range(6), workers=2))
            error = None
        except ValueError as exc:
            error = str(exc)
        print(json.dumps({"first": first, "consumed_at_first": consumed_at_first, "rest": rest, "error": error}))
""")


@pytest.fixture(scope="module")
def pool_run(tmp_path_factory) -> dict:
    script = tmp_path_factory.mktemp("pool") / "pool_script.py"
    script.write_text(POOL_SCRIPT)
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_several_workers_keep_the_input_order(pool_run):
    assert [pool_run["first"], *pool_run["rest"]] == [i * i for i in range(12)]


def test_several_workers_read_at_most_a_window_ahead(pool_run):
    assert pool_run["consumed_at_first"] <= 3


def test_several_workers_raise_the_functions_error(pool_run):
    assert pool_run["error"] == "three"
