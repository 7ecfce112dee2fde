"""Test helpers shared by the test suites: real servers on loopback, scripted where needed."""
