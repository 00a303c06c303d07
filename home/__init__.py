"""The MSP's home server (reference implementation): ingest, fleet view, CA tools."""
