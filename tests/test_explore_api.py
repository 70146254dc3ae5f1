"""The explorer's JSON API (``deltaprop explore``), through Starlette's test client: no real server needed.

Every number the page shows must be the library's: the traced step is compared with ``trace_step``, the one-weight
walk with ``one_weight_descent``, training with the library's own optimiser. Bad requests get a 4xx JSON error.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import numpy as np
import pytest

pytest.importorskip("starlette", reason="the explorer needs the extra [explore] (starlette, uvicorn)")
try:  # Starlette's test client runs on httpx2 (or, older, httpx)
    import httpx2  # noqa: F401
except ImportError:
    pytest.importorskip("httpx", reason="Starlette's test client needs httpx2 or httpx")

from published import PUBLISHED  # noqa: E402  (tests/published.py: the figures as published)
from starlette.testclient import TestClient  # noqa: E402

from deltaprop import MLP, trace_step  # noqa: E402
from deltaprop.examples import WORKED_LR, WORKED_T, WORKED_X, one_weight_descent, worked_example_network  # noqa: E402
from deltaprop.explore import create_app  # noqa: E402
from deltaprop.explore.engine import LIMITS, SessionStore, parse_csv  # noqa: E402
from deltaprop.explore.server import create_app as server_create_app  # noqa: E402
from deltaprop.optim import get_optimizer  # noqa: E402
from deltaprop.train import encode_targets  # noqa: E402

PORT = 8123
BASE = f"http://127.0.0.1:{PORT}"


@pytest.fixture
def client():
    with TestClient(create_app(port=PORT), base_url=BASE) as c:
        yield c


def new_session(client, **config):
    r = client.post("/api/session", json=config)
    assert r.status_code == 201, r.text
    return r.json()["session"], r.json()


def build(client, sid, **config):
    r = client.post(f"/api/session/{sid}/model", json=config)
    assert r.status_code == 200, r.text
    return r.json()


def error_of(r, status):
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["content-type"].startswith("application/json")
    message = r.json()["error"]
    assert isinstance(message, str) and message
    return message


# ------------------------------------------------------------------------------------------- page and assets
def test_the_page_and_its_assets_are_served_from_the_package_with_a_strict_policy(client):
    r = client.get("/")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert "deltaprop" in r.text and "/static/explorer.js" in r.text
    assert "http://" not in r.text and "https://" not in r.text  # no CDN: works offline
    csp = r.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["x-content-type-options"] == "nosniff"
    for asset, kind in (("explorer.js", "javascript"), ("explorer.css", "text/css")):
        a = client.get(f"/static/{asset}")
        assert a.status_code == 200 and kind in a.headers["content-type"]
        assert "https://" not in a.text
    assert client.get("/static/../engine.py").status_code == 404
    assert client.get("/static/nothing.js").status_code == 404


def test_info_lists_the_choices_and_the_limits(client):
    r = client.get("/api/info")
    assert r.status_code == 200
    info = r.json()
    assert set(info["examples"]) == {"worked", "one_weight", "custom"}
    assert {"xor", "moons", "circles", "spirals", "upload"} <= set(info["datasets"])
    assert "tanh" in info["activations"] and "cross_entropy" in info["losses"]
    assert info["limits"]["max_units"] == 64 and info["limits"]["max_upload_bytes"] == 2 * 1024 * 1024
    assert r.headers["cache-control"] == "no-store"


# ------------------------------------------------------------------------------------------------- security
@pytest.mark.parametrize(
    "host",
    ["evil.example", f"evil.example:{PORT}", "127.0.0.1:9999", f"192.168.1.5:{PORT}", f"127.0.0.1.evil.example:{PORT}"],
)
def test_requests_for_another_host_are_refused(client, host):
    for method, path in (("GET", "/"), ("GET", "/api/info"), ("POST", "/api/session")):
        r = client.request(method, path, headers={"host": host})
        assert "another" in error_of(r, 403) or "address" in error_of(r, 403)


@pytest.mark.parametrize("host", [f"127.0.0.1:{PORT}", f"localhost:{PORT}", f"[::1]:{PORT}"])
def test_its_own_loopback_names_are_accepted(client, host):
    assert client.get("/api/info", headers={"host": host}).status_code == 200


@pytest.mark.parametrize(
    "origin",
    [
        "http://evil.example",
        f"http://evil.example:{PORT}",
        "http://127.0.0.1:9999",
        "null",
        f"https://127.0.0.1:{PORT}",
    ],
)
def test_requests_from_another_origin_are_refused(client, origin):
    r = client.post("/api/session", json={}, headers={"origin": origin})
    assert "origin" in error_of(r, 403)
    r = client.get("/api/info", headers={"origin": origin})
    error_of(r, 403)


def test_same_origin_requests_are_accepted_and_cross_site_fetches_refused(client):
    for origin in (BASE, f"http://localhost:{PORT}"):
        r = client.post("/api/session", json={}, headers={"origin": origin, "host": origin[7:]})
        assert r.status_code == 201, r.text
    r = client.post("/api/session", json={}, headers={"sec-fetch-site": "cross-site"})
    error_of(r, 403)
    assert client.post("/api/session", json={}, headers={"sec-fetch-site": "same-origin"}).status_code == 201


def test_the_api_writes_no_file(client, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    sid, _ = new_session(client, example="worked")
    client.post(f"/api/session/{sid}/trace", json={})
    client.post(
        f"/api/session/{sid}/upload?name=a.csv", content=b"x,y\n1,0\n2,1\n3,0\n", headers={"content-type": "text/csv"}
    )
    build(client, sid, example="custom", dataset="upload", hidden=[3])
    client.post(f"/api/session/{sid}/train", json={"steps": 5})
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------------------------ the worked example


def test_the_worked_step_is_trace_step_number_for_number(client):
    sid, state = new_session(client, example="worked")
    assert state["layer_sizes"] == [2, 2, 2] and state["names"] == [["i1", "i2"], ["h1", "h2"], ["o1", "o2"]]
    assert state["drawable"] and state["step"] == 0
    assert state["loss_value"] == pytest.approx(0.298371109, abs=1e-9)
    r = client.post(f"/api/session/{sid}/trace", json={})
    assert r.status_code == 200, r.text
    trace = r.json()["trace"]
    expected = trace_step(worked_example_network(), WORKED_X[0], WORKED_T[0], WORKED_LR).to_dict()
    assert trace["values"] == expected  # the very numbers of the library, not a re-computation
    for key, value in PUBLISHED.items():  # to the digits published
        assert round(trace["values"][key], len(repr(value).split(".")[1])) == value, key
    after = r.json()["state"]
    assert after["step"] == 1
    assert after["loss_value"] == pytest.approx(0.291027774, abs=1e-9)
    W2 = np.array(after["weights"]["layers"][1]["W"])
    assert W2[0, 0] == pytest.approx(0.35891648, abs=1e-8)  # w5 (h1 → o1) after the update
    assert after["weights"]["layers"][0]["b"] == [0.35, 0.35]  # biases held fixed, as published


def test_the_step_comes_as_phases_with_formulas_in_order(client):
    sid, _ = new_session(client, example="worked")
    trace = client.post(f"/api/session/{sid}/trace", json={}).json()["trace"]
    assert [p["id"] for p in trace["phases"]] == [
        "forward-1",
        "forward-2",
        "error",
        "backward-2",
        "backward-1",
        "update",
    ]
    items = {item["key"]: item for p in trace["phases"] for item in p["items"]}
    assert items["net_h1"]["formula"] == "w1·i1 + w2·i2 + b1_h1"
    assert items["net_h1"]["numeric"] == "0.15·0.05 + 0.2·0.1 + 0.35"
    assert items["out_h1"]["shown"] == "0.593269992" and items["out_h1"]["unit"] == "h1"
    assert items["E_total"]["shown"] == "0.298371109"
    assert items["dE_dw5"]["formula"] == "δ_o1 · out_h1"
    assert items["dE_dw5"]["numeric"] == "0.138498562·0.593269992"
    assert items["dE_dout_h1"]["formula"] == "δ_o1·w5 + δ_o2·w7"
    assert items["w5_new"]["numeric"] == "0.4 − 0.5·0.0821670406" and items["w5_new"]["shown"] == "0.35891648"
    assert items["b1_h1_new"]["formula"] == "frozen"
    assert "frozen" in items["dE_db1_h1"]["formula"]
    for key, value in trace["values"].items():  # every value shown is the library's value
        if key in items and isinstance(value, float):
            assert items[key]["value"] == value
    assert "Step 1" in trace["text"]  # the library's own text rendering comes along


def test_stepping_again_continues_from_the_updated_weights(client):
    sid, _ = new_session(client, example="worked")
    net = worked_example_network()
    for _ in range(3):
        expected = trace_step(net, WORKED_X[0], WORKED_T[0], WORKED_LR).to_dict()
        got = client.post(f"/api/session/{sid}/trace", json={}).json()["trace"]["values"]
        assert got == expected
    state = client.get(f"/api/session/{sid}").json()
    assert state["step"] == 3 and len(state["history"]["loss"]) == 3


def test_training_the_worked_example_follows_the_library(client):
    sid, _ = new_session(client, example="worked", train_biases=True)
    r = client.post(f"/api/session/{sid}/train", json={"steps": 50})
    assert r.status_code == 200 and r.json()["steps_done"] == 50
    net = worked_example_network(train_biases=True)
    for _ in range(50):
        net._forward(WORKED_X)
        net._backward(WORKED_T)
        net.step(WORKED_LR)
    state = r.json()["state"]
    assert state["loss_value"] == pytest.approx(net.loss(WORKED_X, WORKED_T), rel=1e-12)
    assert state["history"]["step"] == list(range(1, 51))


# --------------------------------------------------------------------------------------------- the one weight
def test_the_one_weight_walk_is_one_weight_descent(client):
    sid, state = new_session(client, example="one_weight", W0=3.0, lr=0.3)
    ow = state["one_weight"]
    assert ow["W"] == 3.0 and ow["E"] == pytest.approx(5 / 6)
    curve_W, curve_E = np.array(ow["curve"]["W"]), np.array(ow["curve"]["E"])
    assert curve_W[np.argmin(curve_E)] == pytest.approx(2.0, abs=0.05)  # E(W) is lowest at W = 2
    trace = client.post(f"/api/session/{sid}/trace", json={}).json()["trace"]
    assert trace["values"]["W_new"] == pytest.approx(2.5) and trace["values"]["dE_dW"] == pytest.approx(5 / 3)
    assert [p["kind"] for p in trace["phases"]] == ["forward", "error", "backward", "update"]
    r = client.post(f"/api/session/{sid}/train", json={"steps": 11})
    path = r.json()["state"]["one_weight"]["path"]
    expected = one_weight_descent(3.0, 0.3, 12)
    assert [p["W"] for p in path] == [s.W for s in expected]
    assert [p["dE_dW"] for p in path] == [s.dE_dW for s in expected]
    assert [p["W_new"] for p in path] == [s.W_new for s in expected]
    assert r.json()["state"]["one_weight"]["W"] == pytest.approx(2.0, abs=1e-3)


# ------------------------------------------------------------------------------------------ built networks
def test_xor_trains_until_the_decision_regions_separate(client):
    sid, state = new_session(client, example="custom", dataset="xor", hidden=[4], activation="tanh", lr=0.05)
    assert state["layer_sizes"] == [2, 4, 1] and state["loss"] == "binary_cross_entropy"
    assert state["points"]["cls"] == [0, 1, 1, 0]
    r = client.post(f"/api/session/{sid}/train", json={"steps": 300, "grid": True, "grid_size": 41})
    assert r.status_code == 200, r.text
    state = r.json()["state"]
    assert state["metrics"]["accuracy"] == 1.0
    grid = state["grid"]
    assert grid["size"] == 41 and len(grid["cls"]) == 41 * 41
    cls = np.array(grid["cls"]).reshape(41, 41)  # row 0 is the lowest y
    xs = np.linspace(grid["x_min"], grid["x_max"], 41)
    ys = np.linspace(grid["y_min"], grid["y_max"], 41)
    for (x, y), label in zip([(0, 0), (0, 1), (1, 0), (1, 1)], [0, 1, 1, 0]):
        assert cls[np.argmin(abs(ys - y)), np.argmin(abs(xs - x))] == label
    g = client.get(f"/api/session/{sid}/grid?size=20").json()
    assert g["size"] == 20 and g["n_classes"] == 2


def test_training_steps_are_the_library_optimiser_steps(client):
    config = dict(example="custom", dataset="moons", n_samples=60, noise=0.1, seed=3, hidden=[5], activation="tanh")
    sid, state = new_session(client, **config, optimizer="sgd", lr=0.2)
    r = client.post(f"/api/session/{sid}/train", json={"steps": 7})
    got = r.json()["state"]["weights"]["layers"]
    from deltaprop import datasets

    ds = datasets.moons(n_samples=60, noise=0.1, seed=3)
    net = MLP(
        [2, 5, 1],
        activation="tanh",
        output_activation="sigmoid",
        loss="binary_cross_entropy",
        init="glorot_uniform",
        dtype="float64",
        seed=3,
    )
    X = (ds.X - ds.X.mean(axis=0)) / ds.X.std(axis=0)
    T, classes, _ = encode_targets(net, ds.y, "classification")
    opt = get_optimizer("sgd", 0.2)
    opt_state = opt.init(net.theta)
    for _ in range(7):
        net._forward(X)
        net._backward(T)
        opt.step(net.theta, net.grad, opt_state)
    for layer, mine in zip(net.layers, got):
        np.testing.assert_array_equal(layer.W, np.array(mine["W"]))
        np.testing.assert_array_equal(layer.b, np.array(mine["b"]))


def test_a_traced_step_of_a_built_network_is_trace_step_on_one_example(client):
    sid, state = new_session(
        client, example="custom", dataset="circles", n_samples=40, hidden=[3], loss="cross_entropy"
    )
    assert state["layer_sizes"] == [2, 3, 2] and state["activations"] == ["tanh", "softmax"]
    trace = client.post(f"/api/session/{sid}/trace", json={"row": 5}).json()["trace"]
    assert trace["row"] == 5 and trace["full"]
    delta = [i for p in trace["phases"] for i in p["items"] if i["key"] == "delta_o1"][0]
    assert "fused" in delta["formula"]
    assert client.post(f"/api/session/{sid}/trace", json={}).json()["trace"]["row"] == 6  # then the next example


def test_multi_class_and_squared_error_choices(client):
    csv = "a,b,label\n" + "".join(f"{i % 7},{i % 5},{i % 3}\n" for i in range(30))
    sid, _ = new_session(client)
    r = client.post(f"/api/session/{sid}/upload?target=label", content=csv, headers={"content-type": "text/csv"})
    assert r.json()["upload"]["classes"] == [0, 1, 2]
    state = build(client, sid, example="custom", dataset="upload", hidden=[4], loss="squared_error")
    assert state["layer_sizes"] == [2, 4, 3] and state["activations"][-1] == "sigmoid"
    state = build(client, sid, example="custom", dataset="upload", hidden=[4])
    assert state["loss"] == "cross_entropy" and state["activations"][-1] == "softmax"
    bad = {"example": "custom", "dataset": "upload", "loss": "binary_cross_entropy"}
    assert "two classes" in error_of(client.post(f"/api/session/{sid}/model", json=bad), 400)


def test_a_network_too_large_to_draw_is_summarised(client):
    sid, state = new_session(client, example="custom", dataset="spirals", hidden=[64, 64, 64], n_samples=100)
    assert not state["drawable"]
    assert "layers" not in state["weights"] and len(state["weights"]["summary"]) == 4
    r = client.post(f"/api/session/{sid}/trace", json={})
    trace = r.json()["trace"]
    assert not trace["full"] and len(r.content) < 200_000
    assert all(len(p["items"]) <= 3 for p in trace["phases"])
    assert trace["values"]["E_total"] > 0


def test_reset_and_delete(client):
    sid, state = new_session(client, example="custom", dataset="xor")
    first = state["weights"]
    client.post(f"/api/session/{sid}/train", json={"steps": 20})
    state = client.post(f"/api/session/{sid}/reset", json={}).json()
    assert state["step"] == 0 and state["weights"] == first and state["history"]["loss"] == []
    assert client.delete(f"/api/session/{sid}").json() == {"deleted": True}
    error_of(client.get(f"/api/session/{sid}"), 404)


def test_a_diverging_network_is_reported_not_sent_as_nan(client):
    csv = "a,b,y\n" + "".join(f"{i},{2 * i},{1000.5 * i}\n" for i in range(50))
    sid, _ = new_session(client)
    client.post(f"/api/session/{sid}/upload", content=csv, headers={"content-type": "text/csv"})
    build(client, sid, example="custom", dataset="upload", hidden=[8], activation="relu", optimizer="sgd", lr=5)
    r = client.post(f"/api/session/{sid}/train", json={"steps": 200})
    assert r.status_code == 200
    json.loads(r.text, parse_constant=lambda c: pytest.fail(f"{c} in JSON"))
    assert r.json()["state"]["diverged"] and r.json()["state"]["loss_value"] is None
    assert "diverged" in error_of(client.post(f"/api/session/{sid}/trace", json={}), 400)
    assert "diverged" in error_of(client.post(f"/api/session/{sid}/train", json={"steps": 1}), 400)


def test_the_number_of_sessions_is_bounded():
    store = SessionStore(max_sessions=2)
    with TestClient(server_create_app(port=PORT, store=store), base_url=BASE) as c:
        ids = [new_session(c)[0] for _ in range(3)]
        assert len(store) == 2
        error_of(c.get(f"/api/session/{ids[0]}"), 404)
        assert c.post(f"/api/session/{ids[2]}/model", json={"example": "worked"}).status_code == 200


# ------------------------------------------------------------------------------------------------ uploads
def test_an_uploaded_csv_becomes_the_dataset(client):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 2))
    y = (X[:, 0] * X[:, 1] > 0).astype(int)
    csv = "x1;x2;cls\n" + "".join(f"{a:.5f};{b:.5f};{c}\n" for (a, b), c in zip(X, y))  # semicolons work too
    sid, _ = new_session(client)
    r = client.post(
        f"/api/session/{sid}/upload?name=mine.csv", content=csv.encode(), headers={"content-type": "text/csv"}
    )
    assert r.status_code == 200, r.text
    up = r.json()["upload"]
    assert up == {
        "name": "mine.csv",
        "n_rows": 80,
        "n_features": 2,
        "feature_names": ["x1", "x2"],
        "target_name": "cls",
        "task": "classification",
        "classes": [0, 1],
    }
    state = build(client, sid, example="custom", dataset="upload", hidden=[8], grid=True)
    assert state["dataset"]["name"] == "mine.csv" and "grid" in state
    r = client.post(f"/api/session/{sid}/train", json={"steps": 200})
    assert r.json()["state"]["metrics"]["accuracy"] > 0.8


def test_upload_without_a_header_and_with_a_chosen_target(client):
    sid, _ = new_session(client)
    csv = b"0,1.5,3\n1,2.5,4\n0,3.5,5\n1,4.5,6\n"
    up = client.post(f"/api/session/{sid}/upload?target=0", content=csv).json()["upload"]
    assert up["feature_names"] == ["x2", "x3"] and up["target_name"] == "x1" and up["task"] == "classification"
    up = client.post(f"/api/session/{sid}/upload?target=x3&task=regression", content=csv).json()["upload"]
    assert up["target_name"] == "x3" and up["task"] == "regression"
    state = build(client, sid, example="custom", dataset="upload", hidden=[2])
    assert state["activations"][-1] == "identity" and "r2" in state["metrics"]


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (b"a,b\n1,2\nx,4\n", "is not a number"),
        (b"a,b,c\n1,2,3\n4,5\n", "columns"),
        (b"", "empty"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00", "not a CSV"),
        (b"\xff\xfe\xfa,1\n2,3\n", "not UTF-8"),
        (b"a\n1\n2\n3\n", "two columns"),
        (b"a,b\n1,2\n", "two rows"),
        (b"a,b\n1,nan\n2,3\n", "not finite"),
        (b"a,b\n1,1\n2,1\n", "single class"),
    ],
)
def test_an_upload_that_is_not_numeric_csv_is_refused(client, body, needle):
    sid, _ = new_session(client)
    task = "classification" if needle == "single class" else ""
    r = client.post(f"/api/session/{sid}/upload?task={task}", content=body, headers={"content-type": "text/csv"})
    assert needle in error_of(r, 400)


def test_an_upload_over_the_size_limit_is_refused(client):
    sid, _ = new_session(client)
    big = b"a,b\n" + b"1.000000,2.000000\n" * (LIMITS["max_upload_bytes"] // 18 + 10)
    r = client.post(f"/api/session/{sid}/upload", content=big, headers={"content-type": "text/csv"})
    assert "limit" in error_of(r, 413)


def test_upload_target_and_content_type_errors(client):
    sid, _ = new_session(client)
    csv = b"a,b\n1,0\n2,1\n"
    assert "no column named" in error_of(client.post(f"/api/session/{sid}/upload?target=zzz", content=csv), 400)
    assert "out of range" in error_of(client.post(f"/api/session/{sid}/upload?target=7", content=csv), 400)
    assert "task" in error_of(client.post(f"/api/session/{sid}/upload?task=bogus", content=csv), 400)
    r = client.post(f"/api/session/{sid}/upload", content=csv, headers={"content-type": "application/json"})
    error_of(r, 415)
    r = client.post(f"/api/session/{sid}/model", json={"example": "custom", "dataset": "upload"})
    assert "upload a CSV file first" in error_of(r, 400)


def test_parse_csv_limits_rows_and_columns():
    many_rows = b"a,b\n" + b"1,0\n2,1\n" * (int(LIMITS["max_rows"]) // 2 + 1)
    with pytest.raises(ValueError, match="at most"):
        parse_csv(many_rows)
    wide = (",".join(f"c{j}" for j in range(70)) + "\n" + ",".join("1" for _ in range(70)) + "\n") * 1
    wide += ",".join("0" for _ in range(70)) + "\n"
    with pytest.raises(ValueError, match="input columns"):
        parse_csv(wide.encode())


# ------------------------------------------------------------------------------------------- bad requests
@pytest.mark.parametrize(
    ("config", "needle"),
    [
        ({"example": "nope"}, "example must be one of"),
        ({"example": "custom", "hidden": [100]}, "1 to 64 units"),
        ({"example": "custom", "hidden": [4] * 7}, "at most 6 hidden layers"),
        ({"example": "custom", "hidden": "4, x"}, "layer widths"),
        ({"example": "custom", "hidden": [0]}, "1 to 64 units"),
        ({"example": "custom", "activation": "bogus"}, "activation must be one of"),
        ({"example": "custom", "loss": "hinge"}, "loss must be one of"),
        ({"example": "custom", "optimizer": "lbfgs"}, "optimizer must be one of"),
        ({"example": "custom", "dataset": "mnist"}, "dataset must be one of"),
        ({"example": "custom", "lr": -1}, "lr must be between"),
        ({"example": "custom", "lr": "fast"}, "lr must be a number"),
        ({"example": "custom", "dataset": "moons", "n_samples": 10**6}, "n_samples must be between"),
        ({"example": "custom", "seed": 1.5}, "seed must be a whole number"),
        ({"example": "worked", "lr": float("1e9")}, "lr must be between"),
        ({"example": "one_weight", "W0": 1000}, "W0 must be between"),
    ],
)
def test_a_bad_network_is_refused_with_a_clear_message(client, config, needle):
    sid, _ = new_session(client)
    assert needle in error_of(client.post(f"/api/session/{sid}/model", json=config), 400)
    assert needle in error_of(client.post("/api/session", json=config), 400)  # building at creation too


def test_the_hidden_layers_may_come_as_text(client):
    sid, _ = new_session(client)
    assert build(client, sid, example="custom", hidden="8, 6")["layer_sizes"] == [2, 8, 6, 1]
    assert build(client, sid, example="custom", hidden=[])["layer_sizes"] == [2, 1]


@pytest.mark.parametrize("steps", [0, -3, LIMITS["max_steps"] + 1, 2.5, "ten", True])
def test_steps_per_request_are_limited(client, steps):
    sid, _ = new_session(client, example="worked")
    assert "steps" in error_of(client.post(f"/api/session/{sid}/train", json={"steps": steps}), 400)


def test_malformed_requests(client):
    sid, _ = new_session(client, example="worked")
    url = f"/api/session/{sid}/train"
    json_type = {"content-type": "application/json"}
    assert "not valid JSON" in error_of(client.post(url, content=b"{steps: 1", headers=json_type), 400)
    assert "JSON object" in error_of(client.post(url, content=b"[1, 2]", headers=json_type), 400)
    assert "Content-Type" in error_of(client.post(url, content=b"steps=1", headers={"content-type": "text/plain"}), 415)
    big = json.dumps({"steps": 1, "pad": "x" * 70_000})
    assert "limit" in error_of(client.post(url, content=big, headers=json_type), 413)
    assert "row must be" in error_of(client.post(f"/api/session/{sid}/trace", json={"row": 3}), 400)
    assert "grid_size" in error_of(client.post(url, json={"steps": 1, "grid": True, "grid_size": 1000}), 400)
    assert "size must be" in error_of(client.get(f"/api/session/{sid}/grid?size=2"), 400)
    assert "whole number" in error_of(client.get(f"/api/session/{sid}?grid=lots"), 400)
    assert "decision regions" in error_of(client.get(f"/api/session/{sid}/grid"), 400)


def test_unknown_sessions_endpoints_and_methods(client):
    assert "session" in error_of(client.get("/api/session/doesnotexist"), 404)
    assert "session" in error_of(client.post("/api/session/doesnotexist/train", json={"steps": 1}), 404)
    assert "session" in error_of(client.delete("/api/session/doesnotexist"), 404)
    assert "no such API endpoint" in error_of(client.get("/api/nothing"), 404)
    error_of(client.get("/api/session"), 405)
    error_of(client.put("/api/info"), 405)
    sid, _ = new_session(client)
    assert "no network yet" in error_of(client.post(f"/api/session/{sid}/trace", json={}), 400)
    assert "no network yet" in error_of(client.get(f"/api/session/{sid}"), 400)


# ----------------------------------------------------------------------------------------- a real server
def test_the_server_listens_on_loopback_on_a_free_port_and_checks_the_host():
    from deltaprop.explore.server import ExplorerServer

    with ExplorerServer(port=0) as server:
        assert server.url.startswith("http://127.0.0.1:") and server.port > 0
        with urllib.request.urlopen(server.url + "api/info", timeout=5) as r:
            assert json.load(r)["limits"]["max_units"] == 64
        req = urllib.request.Request(server.url + "api/info", headers={"Host": "evil.example"})
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(req, timeout=5)
        assert info.value.code == 403


def test_a_bad_port_is_refused():
    from deltaprop.explore.server import ExplorerServer

    with pytest.raises(ValueError, match="port"):
        ExplorerServer(port=70000)


def test_python_m_deltaprop_explore_reports_a_bad_port_in_one_line(capsys):
    from deltaprop.explore.__main__ import _run

    assert _run(["--no-browser", "--port", "70000"]) == 2
    assert "error: port must be" in capsys.readouterr().err
