"""The user's command line for a modelpress server, built on the generated client."""
