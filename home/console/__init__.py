"""The MSP console: home's web interface for a fleet of client sites (docs/console.md).

accounts (users, sessions, API tokens, the setup token) and passwords (scrypt) -> guard (the
middleware every request passes: who is asking, CSRF and Origin, the role a route needs) ->
fleet (what the pages show, read from home's database) -> actions (acknowledge, note, silence,
claim, release, push a configuration, run a command; each one audited) -> pages (HTML, Jinja2
with autoescape) and api (JSON, OpenAPI). ``mount`` in app.py puts it on home's server.
"""
