"""The test and bench harness: one place for what tests/ and bench/ both need.

Nothing here runs on the appliance or in home; ``bench/`` imports this package instead of
``tests/`` (tests/test_layers.py checks it), and the ``tests/*_support.py`` modules re-export
it next to their test-only helpers. Submodules, imported on their own (none is imported
here, so ``import simsite.harness.paths`` stays cheap):

* :mod:`.paths`: the repository, the shared SNMP corpus and why it is missing;
* :mod:`.ports`: free TCP/UDP ports on loopback;
* :mod:`.processes`: the ``outpost`` and ``outpost-home`` commands, starting and stopping them;
* :mod:`.home`: a real ``outpost-home run`` with a CA made for the test;
* :mod:`.appliance`: appliance configurations and the appliance built in-process;
* :mod:`.status_page`: a store seeded like a small office, the web app on loopback;
* :mod:`.snmp_corpus`: one snmpsim serving the corpus, and a target per recording;
* :mod:`.waiting`: polling a condition with a deadline that names what it waited for.
"""
