"""Every registered route declares the permission it needs (fail closed otherwise)."""

from servicehub.auth.access import required_permission


def test_every_route_declares_a_permission(app):
    undeclared = []
    for rule in app.url_map.iter_rules():
        for method in sorted(rule.methods - {"OPTIONS", "HEAD"}):
            if required_permission(app, rule.endpoint, method) is None:
                undeclared.append(f"{method} {rule.rule} ({rule.endpoint})")
    assert not undeclared, "routes without a declared permission:\n" + "\n".join(undeclared)


def test_an_undeclared_route_is_refused(make_app):
    app = make_app()

    @app.get("/api/v1/forgotten")
    def forgotten():
        return {"leak": True}

    response = app.test_client().get("/api/v1/forgotten")
    assert response.status_code == 403
    assert "leak" not in response.get_data(as_text=True)
