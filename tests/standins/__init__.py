"""Stand-ins for the servers llmprov talks to, used by the tests."""
