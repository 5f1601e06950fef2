"""``make smoke STACK=name [REGION=...]``: a read-only check of a live REDCap stack.

Run with your own AWS credentials (any principal allowed the Describe/Get/List calls below):

    make smoke STACK=redcap-prod REGION=eu-west-1
    PYTHONPATH=layers/shared:tests .venv/bin/python -m smoke --stack NAME [--region R] [--caller-ip IP]

Prints one table (check, result, detail, next step), exits 1 when a check FAILED, 2 when it could
not start (no such stack, no credentials), 0 otherwise. Every AWS call is a Describe, Get, List or
Head (a hook refuses anything else before it is sent), and every web request is an HTTPS GET.
docs/smoke.md lists the checks and what to do when each fails.
"""
