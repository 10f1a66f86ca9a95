"""Helpers shared by the tests: mails (``mails``), where things are and when a missing one
fails the run (``paths``), the test-bed Redmine and an operator's site around the installed
program (``testbed``), and the misbehaving servers for fault injection (``fakeserver``,
``faultproxy``). Test modules import from here, never from each other."""
