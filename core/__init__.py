"""Foundation of Outpost: logs, config schema, clock, bus, status, files; imports nothing above."""
