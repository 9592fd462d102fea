from tests.static.user_repo import repo  # noqa: F401 (a fixture the adoption tests share)
