//! `POST /api/batch`: PocketBase's format (multipart `@jsonPayload`, as the SDK sends it, and
//! plain JSON) and the short `{method, collection, id, data}` form; one transaction across
//! collections (all or nothing, the failing index in PocketBase's shape); rules per request;
//! the request-count, url, body and time limits; other users' records out of reach.

use super::server::TestServer;
use serde_json::{json, Value as Json};

/// `posts` (open to everyone) and `notes` (owner-only), with a user `owner` owning a note.
fn fixtures(server: &TestServer, admin: &str) {
    server.create_collection(
        admin,
        json!({"name": "posts", "listRule": "", "viewRule": "", "createRule": "",
        "updateRule": "", "deleteRule": "", "fields": [
            {"name": "title", "type": "text", "required": true},
            {"name": "n", "type": "number"},
            {"name": "author", "type": "relation", "collectionId": "users"},
        ]}),
    );
    let owner_rule = "owner = @request.auth.id";
    server.create_collection(
        admin,
        json!({"name": "notes", "listRule": owner_rule, "viewRule": owner_rule,
        "createRule": "@request.auth.id != '' && owner = @request.auth.id",
        "updateRule": owner_rule, "deleteRule": owner_rule, "fields": [
            {"name": "text", "type": "text"},
            {"name": "owner", "type": "relation", "collectionId": "users"},
        ]}),
    );
}

/// The body the SDK sends: multipart with one `@jsonPayload` part.
fn multipart(payload: &Json) -> (String, String) {
    let body = format!(
        "--sdk\r\nContent-Disposition: form-data; name=\"@jsonPayload\"\r\n\r\n{payload}\r\n--sdk--\r\n"
    );
    ("multipart/form-data; boundary=sdk".to_string(), body)
}

fn count(server: &TestServer, admin: &str, collection: &str) -> u64 {
    let response =
        server.get(&format!("/api/collections/{collection}/records")).auth(Some(admin)).send();
    response.json()["totalItems"].as_u64().unwrap()
}

#[test]
fn sdk_multipart_batch_creates_updates_deletes_and_upserts() {
    let server = TestServer::start();
    let admin = server.admin();
    fixtures(&server, &admin);
    let first = server.create_record("posts", None, json!({"title": "first"}));
    let second = server.create_record("posts", None, json!({"title": "second", "n": 1}));
    let (id1, id2) = (first["id"].as_str().unwrap(), second["id"].as_str().unwrap());
    let payload = json!({"requests": [
        {"method": "POST", "url": "/api/collections/posts/records?fields=id,title", "body": {"title": "b1"}},
        {"method": "PATCH", "url": format!("/api/collections/posts/records/{id1}"), "body": {"n+": 5}},
        {"method": "DELETE", "url": format!("/api/collections/posts/records/{id2}"), "body": {}},
        {"method": "PUT", "url": "/api/collections/posts/records", "body": {"id": "abc123def456ghi", "title": "new"}},
        {"method": "PUT", "url": "/api/collections/posts/records", "body": {"id": id1, "title": "upserted"}},
    ]});
    let (content_type, body) = multipart(&payload);
    let response = server.post("/api/batch").raw(&content_type, body).send();
    assert_eq!(response.status, 200, "{}", response.json());
    let results = response.json();
    let statuses: Vec<u64> =
        results.as_array().unwrap().iter().map(|r| r["status"].as_u64().unwrap()).collect();
    assert_eq!(statuses, [200, 200, 204, 200, 200]);
    assert_eq!(results[0]["body"].as_object().unwrap().len(), 2, "fields applies per request");
    assert_eq!(results[0]["body"]["title"], "b1");
    assert_eq!(results[1]["body"]["n"], 5);
    assert_eq!(results[2]["body"], Json::Null);
    assert_eq!(results[3]["body"]["id"], "abc123def456ghi");
    assert_eq!(results[4]["body"]["title"], "upserted");
    assert_eq!(results[4]["body"]["n"], 5, "an upsert of an existing record updates it");
    assert_eq!(server.get(&format!("/api/collections/posts/records/{id2}")).send().status, 404);
    assert_eq!(count(&server, &admin, "posts"), 3);
}

#[test]
fn short_form_spans_collections_in_one_transaction() {
    let server = TestServer::start();
    let admin = server.admin();
    fixtures(&server, &admin);
    let (_, user) = server.user("users", "u@example.com", "password-1");
    let user_id = user["id"].as_str().unwrap();
    let response = server
        .post("/api/batch")
        .auth(Some(&admin))
        .json(&json!({"requests": [
            {"method": "create", "collection": "posts", "data": {"id": "post00000000001", "title": "t"}},
            {"method": "update", "collection": "posts", "id": "post00000000001", "data": {"author": user_id}},
            {"method": "create", "collection": "notes", "data": {"text": "x", "owner": user_id}},
            {"method": "upsert", "collection": "posts", "id": "post00000000002", "data": {"title": "u"}},
        ]}))
        .send();
    assert_eq!(response.status, 200, "{}", response.json());
    let results = response.json();
    assert_eq!(results[1]["body"]["author"], user_id, "a request sees the earlier ones");
    assert_eq!(results[2]["body"]["collectionName"], "notes");
    assert_eq!(results[3]["body"]["id"], "post00000000002");
    assert_eq!((count(&server, &admin, "posts"), count(&server, &admin, "notes")), (2, 1));
}

#[test]
fn a_failing_request_rolls_back_the_whole_batch_with_its_index() {
    let server = TestServer::start();
    let admin = server.admin();
    fixtures(&server, &admin);
    let response = server
        .post("/api/batch")
        .json(&json!({"requests": [
            {"method": "POST", "url": "/api/collections/posts/records", "body": {"title": "kept?"}},
            {"method": "POST", "url": "/api/collections/posts/records", "body": {"title": "also"}},
            {"method": "POST", "url": "/api/collections/posts/records", "body": {"n": 1}},
            {"method": "POST", "url": "/api/collections/posts/records", "body": {"title": "never run"}},
        ]}))
        .send();
    assert_eq!(response.status, 400);
    assert_eq!(
        response.json(),
        json!({"data": {"requests": {"2": {"code": "batch_request_failed", "message": "Batch request failed.",
            "response": {"data": {"title": {"code": "validation_required", "message": "Cannot be blank."}},
                "message": "Failed to create record.", "status": 400}}}},
            "message": "Batch transaction failed.", "status": 400})
    );
    assert_eq!(count(&server, &admin, "posts"), 0, "nothing of a failed batch is written");

    // A unique id taken by an earlier request of the same batch fails the later one.
    let response = server
        .post("/api/batch")
        .json(&json!({"requests": [
            {"method": "create", "collection": "posts", "data": {"id": "same00000000001", "title": "a"}},
            {"method": "create", "collection": "posts", "data": {"id": "same00000000001", "title": "b"}},
        ]}))
        .send();
    let failure = &response.json()["data"]["requests"]["1"]["response"];
    assert_eq!(failure["data"]["id"]["code"], "validation_not_unique", "{failure}");
    assert_eq!(count(&server, &admin, "posts"), 0);
}

#[test]
fn unknown_actions_and_collections_fail_at_their_index() {
    let server = TestServer::start();
    let admin = server.admin();
    fixtures(&server, &admin);
    for (request, status) in [
        (json!({"method": "GET", "url": "/api/collections/posts/records"}), 400),
        (json!({"method": "POST", "url": "/api/collections/missing/records", "body": {}}), 404),
        (
            json!({"method": "POST", "url": "/api/collections/posts/records?fields=a:excerpt(x", "body": {"title": "a"}}),
            400,
        ),
        (
            json!({"method": "PATCH", "url": "/api/collections/posts/records/nosuchrecord00", "body": {}}),
            404,
        ),
        (json!({"method": "DELETE", "url": "/api/collections/posts/records/../x"}), 400),
    ] {
        let response = server
            .post("/api/batch")
            .json(&json!({"requests": [
                {"method": "POST", "url": "/api/collections/posts/records", "body": {"title": "ok"}},
                request,
            ]}))
            .send();
        assert_eq!(response.status, 400, "{request}");
        let failure = &response.json()["data"]["requests"]["1"];
        assert_eq!(failure["code"], "batch_request_failed", "{request}");
        assert_eq!(failure["response"]["status"], status, "{request}: {failure}");
    }
    assert_eq!(count(&server, &admin, "posts"), 0);
    for bad in [&b"{"[..], b"[]", b"{\"requests\": {}}"] {
        let response = server.post("/api/batch").raw("application/json", bad.to_vec()).send();
        assert_eq!(response.status, 400, "{}", String::from_utf8_lossy(bad));
    }
}

#[test]
fn rules_apply_to_every_request_and_other_users_records_stay_out_of_reach() {
    let server = TestServer::start();
    let admin = server.admin();
    fixtures(&server, &admin);
    let (alice, alice_record) = server.user("users", "alice@example.com", "password-1");
    let (bob, bob_record) = server.user("users", "bob@example.com", "password-1");
    let (alice_id, bob_id) =
        (alice_record["id"].as_str().unwrap(), bob_record["id"].as_str().unwrap());
    let note =
        server.create_record("notes", Some(&alice), json!({"text": "alice's", "owner": alice_id}));
    let note_id = note["id"].as_str().unwrap();
    let note_path = format!("/api/collections/notes/records/{note_id}");
    // Bob may neither update nor delete Alice's note, nor create one in her name: 404, 404, 400.
    for (request, status) in [
        (json!({"method": "PATCH", "url": note_path, "body": {"text": "bob was here"}}), 404),
        (json!({"method": "DELETE", "url": note_path}), 404),
        (json!({"method": "PATCH", "url": note_path, "body": {"owner": bob_id}}), 404),
        (
            json!({"method": "PUT", "url": "/api/collections/notes/records", "body": {"id": note_id, "text": "x"}}),
            404,
        ),
        (
            json!({"method": "POST", "url": "/api/collections/notes/records", "body": {"text": "x", "owner": alice_id}}),
            400,
        ),
        (
            json!({"method": "DELETE", "url": "/api/collections/users/records/".to_string() + alice_id}),
            404,
        ),
    ] {
        let response = server
            .post("/api/batch")
            .auth(Some(&bob))
            .json(&json!({"requests": [
                {"method": "POST", "url": "/api/collections/notes/records", "body": {"text": "mine", "owner": bob_id}},
                request,
            ]}))
            .send();
        assert_eq!(response.status, 400, "{request}");
        let failure = &response.json()["data"]["requests"]["1"]["response"];
        assert_eq!(failure["status"], status, "{request}: {failure}");
        assert!(!failure.to_string().contains("alice's"), "no record content leaks: {failure}");
    }
    let stored = server.get(&note_path).auth(Some(&alice)).send().json();
    assert_eq!(stored["text"], "alice's");
    assert_eq!(count(&server, &admin, "notes"), 1, "Bob's own creates were rolled back");

    // A forged or a per-request Authorization is not the batch's: the outer one serves all.
    let response = server
        .post("/api/batch")
        .auth(Some("forged.token.value"))
        .json(&json!({"requests": [
            {"method": "PATCH", "url": note_path, "headers": {"Authorization": alice}, "body": {"text": "guest"}},
        ]}))
        .send();
    assert_eq!(response.json()["data"]["requests"]["0"]["response"]["status"], 404);

    // A locked rule is 403 inside the batch too; a superuser passes every rule.
    server.create_collection(
        &admin,
        json!({"name": "locked", "fields": [{"name": "t", "type": "text"}]}),
    );
    let locked =
        json!({"requests": [{"method": "create", "collection": "locked", "data": {"t": "x"}}]});
    let response = server.post("/api/batch").auth(Some(&alice)).json(&locked).send();
    assert_eq!(response.json()["data"]["requests"]["0"]["response"]["status"], 403);
    assert_eq!(server.post("/api/batch").auth(Some(&admin)).json(&locked).send().status, 200);
}

#[test]
fn rules_see_the_batch_context() {
    let server = TestServer::start();
    let admin = server.admin();
    server.create_collection(
        &admin,
        json!({"name": "only_batch", "createRule": "@request.context = 'batch'",
        "fields": [{"name": "t", "type": "text"}]}),
    );
    let single = server.post("/api/collections/only_batch/records").json(&json!({"t": "x"})).send();
    assert_eq!(single.status, 400);
    let response = server
        .post("/api/batch")
        .json(&json!({"requests": [{"method": "create", "collection": "only_batch", "data": {"t": "x"}}]}))
        .send();
    assert_eq!(response.status, 200, "{}", response.json());
}

#[test]
fn auth_records_and_passwords_in_a_batch() {
    let server = TestServer::start();
    let admin = server.admin();
    let response = server
        .post("/api/batch")
        .json(&json!({"requests": [
            {"method": "create", "collection": "users",
             "data": {"email": "new@example.com", "password": "password-1", "passwordConfirm": "password-1"}},
        ]}))
        .send();
    assert_eq!(response.status, 200, "{}", response.json());
    let created = &response.json()[0]["body"];
    assert!(created.get("password").is_none() && created.get("tokenKey").is_none(), "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    let login = server.login("users", "new@example.com", "password-1");
    assert_eq!(login.status, 200);
    let token = login.json()["token"].as_str().unwrap().to_string();
    let change = |old: &str| {
        json!({"requests": [{"method": "update", "collection": "users", "id": id,
            "data": {"password": "password-2", "passwordConfirm": "password-2", "oldPassword": old}}]})
    };
    let wrong = server.post("/api/batch").auth(Some(&token)).json(&change("wrong-password")).send();
    let failure = &wrong.json()["data"]["requests"]["0"]["response"];
    assert_eq!(failure["data"]["oldPassword"]["code"], "validation_invalid_old_password");
    let right = server.post("/api/batch").auth(Some(&token)).json(&change("password-1")).send();
    assert_eq!(right.status, 200, "{}", right.json());
    assert_eq!(server.login("users", "new@example.com", "password-2").status, 200);
    let mismatch = json!({"requests": [{"method": "create", "collection": "users",
        "data": {"email": "x@example.com", "password": "password-1", "passwordConfirm": "other"}}]});
    let response = server.post("/api/batch").auth(Some(&admin)).json(&mismatch).send();
    let failure = &response.json()["data"]["requests"]["0"]["response"];
    assert_eq!(failure["data"]["passwordConfirm"]["code"], "validation_values_mismatch");
}

#[test]
fn request_count_body_and_time_limits() {
    let mut server = TestServer::start_with(|config| {
        config.batch_requests_max = 3;
        config.body_bytes_max = 4096;
    });
    let admin = server.admin();
    fixtures(&server, &admin);
    let requests = |n: usize| {
        let one = json!({"method": "create", "collection": "posts", "data": {"title": "t"}});
        json!({"requests": vec![one; n]})
    };
    assert_eq!(server.post("/api/batch").json(&requests(3)).send().status, 200);
    let response = server.post("/api/batch").json(&requests(4)).send();
    assert_eq!(response.status, 400);
    assert_eq!(
        response.json(),
        json!({"data": {"requests": {"code": "validation_length_too_long",
            "message": "The length must be no more than 3."}},
            "message": "Invalid batch request data.", "status": 400})
    );
    let long_title = "x".repeat(4096);
    let response = server
        .post("/api/batch")
        .json(&json!({"requests": [{"method": "create", "collection": "posts", "data": {"title": long_title}}]}))
        .send();
    assert_eq!(response.status, 413, "a batch body over the body limit");
    assert_eq!(count(&server, &admin, "posts"), 3);

    // The timeout: a zero timeout fails at the first request; the default passes.
    server.stop().unwrap();
    let mut config = server.config.clone();
    config.batch_timeout = std::time::Duration::ZERO;
    let slow = TestServer::spawn(config, None);
    let response = slow.post("/api/batch").json(&requests(1)).send();
    assert_eq!(response.status, 400);
    let failure = &response.json()["data"]["requests"]["0"];
    assert!(failure["response"]["message"].as_str().unwrap().contains("timeout"), "{failure}");
}
