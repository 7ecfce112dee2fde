"""The admin HTTP API: one module a resource, each with its request and response bodies next
to its routes; the OpenAPI examples live in ``examples``, what the resources share in
``common``.

Bodies are strict about what they accept (unknown fields are 422, so a typo is never
silently ignored) and validate what the public path relies on: origins are exactly
``scheme://host[:port]``, temperatures 0 to 2, rate limits in ``limits`` notation.
"""
