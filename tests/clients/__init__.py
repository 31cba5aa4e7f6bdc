"""Tests of the clients for other languages, run against the installed trek-audit."""
