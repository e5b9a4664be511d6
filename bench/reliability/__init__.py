"""Reliability and security of the HTTP service under fuzzing, load and faults, measured (issue 8).

``python -m bench.reliability`` (``make check-reliability``) runs the tests in
``tests/test_reliability*.py`` at full size, collects the figures each test
records through :func:`bench.reliability.report.record`, prints one table and
writes it to ``bench/results/reliability.json``. ``make test`` runs the same
tests at a small size. The modules here hold what the tests drive:

* :mod:`.fuzz` – contract fuzzing with schemathesis against the real app;
* :mod:`.load` – bounded concurrent clients against a real gunicorn server;
* :mod:`.faults` – write ledgers, store comparison, a private PostgreSQL cluster;
* :mod:`.sizes` – the fast and the full size of each part;
* :mod:`.report` – figures, the table and the JSON file.
"""
