"""What every recipe of the Task Queue Toolkit shares: the demo's HTTP API, its Postgres tables,
the ops CLI's verbs, and the parsing of settings. Nothing here knows which job library runs jobs.
"""
