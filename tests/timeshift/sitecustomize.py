"""Moves the wall clock of every Python process of a test run years ahead (``make
test-future``): pytest, its workers, the servers, moto and the CLI they start all import
this through ``PYTHONPATH`` and travel together, so a literal date that will expire shows
up today.

libfaketime would be the usual tool, but Debian's 0.9.10 cannot run Python 3.11 threads:
it fakes CLOCK_MONOTONIC without intercepting ``sem_clockwait``, so every timed wait
(``Event.wait(5)``, ``Thread.join(5)``) sleeps for the years of the shift, and with
``FAKETIME_DONT_FAKE_MONOTONIC=1`` its ``clock_nanosleep`` makes ``time.sleep`` fail with
EINVAL. ``time-machine`` moves only the wall clock (``time.time``, ``datetime.now``,
``CLOCK_REALTIME``) and leaves the monotonic clock alone, which is what a later day is.
The database server and the kernel keep the real time: a query that mixes the two shows up
as a failure too.
"""

import os

_days = os.environ.get("WEIGHTGATE_TEST_CLOCK_SHIFT_DAYS")
if _days:
    from datetime import UTC, datetime, timedelta

    import time_machine

    _travel = time_machine.travel(datetime.now(UTC) + timedelta(days=float(_days)), tick=True)
    _travel.start()
    # time-machine starts ticking at the first reading, not at start(): read once now, or a
    # process that sleeps before its first reading would run behind the others.
    datetime.now(UTC)
