"""Speed figures the issues ask for; `make bench` runs them all (`python -m benchmarks`)."""
