"""trek-audit's command line: one click group gathering the commands of each component."""
