//! Health, unknown routes, the error shape, and the server's life cycle (graceful stop,
//! data kept across a restart).

use super::server::TestServer;
use serde_json::json;

#[test]
fn health_answers_pocketbase_shape() {
    let server = TestServer::start();
    let response = server.get("/api/health").send();
    assert_eq!(response.status, 200);
    assert_eq!(response.json(), json!({"message": "API is healthy.", "code": 200, "data": {}}));
    assert_eq!(response.header("content-type"), Some("application/json"));
    assert_eq!(server.request("HEAD", "/api/health").send().status, 200);
}

#[test]
fn unknown_routes_are_404_in_pocketbase_shape() {
    let server = TestServer::start();
    for path in ["/", "/api/nope", "/api/collections/x/records/y/z", "/api/health/x"] {
        let response = server.get(path).send();
        assert_eq!(response.status, 404, "{path}");
        assert_eq!(
            response.json(),
            json!({"data": {}, "message": "The requested resource wasn't found.", "status": 404}),
            "{path}"
        );
    }
}

#[test]
fn known_paths_with_other_methods_are_405_in_pocketbase_shape() {
    let server = TestServer::start();
    for (method, path) in [
        ("POST", "/api/health"),
        ("PUT", "/api/collections/users/records"),
        ("GET", "/api/auth/login"),
    ] {
        let response = server.request(method, path).send();
        assert_eq!(response.status, 405, "{method} {path}");
        assert_eq!(
            response.json(),
            json!({"data": {}, "message": "Method not allowed.", "status": 405})
        );
    }
}

#[test]
fn data_survives_a_graceful_restart() {
    let server = TestServer::start();
    let admin = server.admin();
    server.create_collection(
        &admin,
        json!({"name": "notes", "listRule": "", "viewRule": "",
        "fields": [{"name": "text", "type": "text"}]}),
    );
    let created = server.create_record("notes", Some(&admin), json!({"text": "kept"}));
    let id = created["id"].as_str().unwrap().to_string();
    let server = server.restart();
    let response = server.get(&format!("/api/collections/notes/records/{id}")).send();
    assert_eq!(response.status, 200);
    assert_eq!(response.json()["text"], "kept");
    let admin_after = server.admin();
    assert_eq!(
        server.get("/api/collections/notes").auth(Some(&admin)).send().status,
        200,
        "tokens survive a restart (the secret is stored)"
    );
    assert!(!admin_after.is_empty());
}
