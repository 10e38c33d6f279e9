//! Security: forged and stale tokens are guests, other users' records stay out of reach by
//! every route, hidden fields cannot be probed by filters, bad input is a 4xx (never a 500
//! or a hang), over-long bodies are 413 at the exact limit, and path tricks find nothing.

use super::auth::claims;
use super::server::{encode, TestServer};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use nanodb_server::auth::token::{sign, signing_key, Claims};
use serde_json::{json, Value as Json};
use std::io::{Read, Write};

fn segment(json: &Json) -> String {
    URL_SAFE_NO_PAD.encode(json.to_string())
}

/// 401 means the collections API saw a guest (a superuser would get 200).
fn is_guest(server: &TestServer, token: &str) -> bool {
    server.get("/api/collections").auth(Some(token)).send().status == 401
}

#[test]
fn forged_tokens_are_guests() {
    let server = TestServer::start();
    let admin = server.admin();
    assert!(!is_guest(&server, &admin));
    let real = claims(&admin);
    let exp = real["exp"].as_i64().unwrap();
    let payload = json!({"collectionId": real["collectionId"], "exp": exp, "id": real["id"],
        "refreshable": true, "type": "auth"});
    let signature = admin.rsplit('.').next().unwrap();
    let alg_none =
        format!("{}.{}.", segment(&json!({"alg": "none", "typ": "JWT"})), segment(&payload));
    let alg_none_signed =
        format!("{}.{}.{signature}", segment(&json!({"alg": "none"})), segment(&payload));
    let hs512 = format!(
        "{}.{}.{signature}",
        segment(&json!({"alg": "HS512", "typ": "JWT"})),
        segment(&payload)
    );
    let claims = Claims {
        id: real["id"].as_str().unwrap().into(),
        collection_id: real["collectionId"].as_str().unwrap().into(),
        exp,
        refreshable: true,
    };
    let wrong_key = sign(&claims, &signing_key("guessed-token-key", "guessed-secret"));
    let empty_key = sign(&claims, b"");
    let mut tampered_payload = payload.clone();
    tampered_payload["exp"] = json!(exp + 1000);
    let header = admin.split('.').next().unwrap();
    let tampered = format!("{header}.{}.{signature}", segment(&tampered_payload));
    let mut file_type = payload.clone();
    file_type["type"] = json!("file");
    let wrong_type = format!("{header}.{}.{signature}", segment(&file_type));
    for token in [
        alg_none,
        alg_none_signed,
        hs512,
        wrong_key,
        empty_key,
        tampered,
        wrong_type,
        "garbage".into(),
        "a.b.c".into(),
        format!("{admin}x"),
        "x".repeat(5000),
    ] {
        assert!(is_guest(&server, &token), "{token}");
    }
}

#[test]
fn tokens_of_other_collections_or_deleted_records_are_refused() {
    let server = TestServer::start();
    let admin = server.admin();
    server.create_collection(&admin, json!({"name": "members", "type": "auth", "createRule": ""}));
    let (member, member_record) = server.user("members", "m@example.com", "password-1");
    let (user, user_record) = server.user("users", "u@example.com", "password-1");
    let user_path =
        format!("/api/collections/users/records/{}", user_record["id"].as_str().unwrap());
    assert_eq!(server.get(&user_path).auth(Some(&user)).send().status, 200);
    assert_eq!(
        server.get(&user_path).auth(Some(&member)).send().status,
        404,
        "a member is not that user"
    );
    let refresh = server.post("/api/collections/users/auth-refresh").auth(Some(&member)).send();
    assert_eq!(refresh.status, 403);
    // A member token whose collectionId claim is changed to the users collection.
    let parts: Vec<&str> = member.split('.').collect();
    let mut payload = claims(&member);
    payload["collectionId"] = json!("_pb_users_auth_");
    payload["id"] = user_record["id"].clone();
    let moved = format!("{}.{}.{}", parts[0], segment(&payload), parts[2]);
    assert_eq!(server.get(&user_path).auth(Some(&moved)).send().status, 404);
    let member_path =
        format!("/api/collections/members/records/{}", member_record["id"].as_str().unwrap());
    assert_eq!(server.delete(&member_path).auth(Some(&admin)).send().status, 204);
    assert_eq!(
        server.post("/api/collections/members/auth-refresh").auth(Some(&member)).send().status,
        401,
        "deleted record"
    );
}

#[test]
fn expired_tokens_are_guests() {
    let server = TestServer::start();
    let admin = server.admin();
    let short = server
        .patch("/api/collections/users")
        .auth(Some(&admin))
        .json(&json!({"authToken": {"duration": 1}}))
        .send();
    assert_eq!(short.status, 200);
    let (token, record) = server.user("users", "u@example.com", "password-1");
    let path = format!("/api/collections/users/records/{}", record["id"].as_str().unwrap());
    assert_eq!(server.get(&path).auth(Some(&token)).send().status, 200);
    std::thread::sleep(std::time::Duration::from_millis(2100));
    assert_eq!(server.get(&path).auth(Some(&token)).send().status, 404);
    assert_eq!(
        server.post("/api/collections/users/auth-refresh").auth(Some(&token)).send().status,
        401
    );
}

#[test]
fn other_users_records_stay_hidden_by_every_route() {
    let server = TestServer::start();
    let admin = server.admin();
    server.create_collection(
        &admin,
        json!({"name": "posts", "listRule": "", "viewRule": "", "createRule": "",
        "fields": [{"name": "owner", "type": "relation", "collectionId": "users"}]}),
    );
    let (alice, alice_record) = server.user("users", "alice@example.com", "password-1");
    let (bob, bob_record) = server.user("users", "bob@example.com", "password-1");
    let alice_id = alice_record["id"].as_str().unwrap();
    let alice_path = format!("/api/collections/users/records/{alice_id}");
    server.create_record("posts", None, json!({"owner": alice_id}));
    let users = server.get("/api/collections/users/records").auth(Some(&bob)).send().json();
    assert_eq!(users["totalItems"], 1);
    assert_eq!(users["items"][0]["id"], bob_record["id"]);
    let by_filter = server
        .get(&format!(
            "/api/collections/users/records?filter={}",
            encode(&format!("id = '{alice_id}'"))
        ))
        .auth(Some(&bob))
        .send()
        .json();
    assert_eq!(by_filter["totalItems"], 0);
    assert_eq!(server.get(&alice_path).auth(Some(&bob)).send().status, 404);
    assert_eq!(
        server.patch(&alice_path).auth(Some(&bob)).json(&json!({"name": "x"})).send().status,
        404
    );
    let takeover = server
        .patch(&alice_path)
        .auth(Some(&bob))
        .json(&json!({"password": "password-9", "passwordConfirm": "password-9", "oldPassword": "password-1"}))
        .send();
    assert_eq!(takeover.status, 404);
    assert_eq!(server.delete(&alice_path).auth(Some(&bob)).send().status, 404);
    let expanded =
        server.get("/api/collections/posts/records?expand=owner").auth(Some(&bob)).send().json();
    assert!(expanded["items"][0].get("expand").is_none(), "{expanded}");
    let own =
        server.get("/api/collections/posts/records?expand=owner").auth(Some(&alice)).send().json();
    assert_eq!(own["items"][0]["expand"]["owner"]["email"], "alice@example.com");
    assert_eq!(
        server.login("users", "alice@example.com", "password-1").status,
        200,
        "alice is intact"
    );
}

#[test]
fn hidden_fields_cannot_be_probed_by_filter_or_sort() {
    let server = TestServer::start();
    let admin = server.admin();
    let opened = server
        .patch("/api/collections/users")
        .auth(Some(&admin))
        .json(&json!({"listRule": ""}))
        .send();
    assert_eq!(opened.status, 200);
    let (user, _) = server.user("users", "u@example.com", "password-1");
    for query in [
        "filter=tokenKey%20~%20'a'",
        "filter=password%20!%3D%20''",
        "filter=email%20~%20'u'",
        "sort=tokenKey",
        "sort=-password",
    ] {
        for token in [None, Some(user.as_str())] {
            let response =
                server.get(&format!("/api/collections/users/records?{query}")).auth(token).send();
            assert_eq!(response.status, 400, "{query}");
        }
    }
    let superuser = server
        .get("/api/collections/users/records?filter=tokenKey%20!%3D%20''")
        .auth(Some(&admin))
        .send();
    assert_eq!(superuser.status, 200);
    assert_eq!(superuser.json()["totalItems"], 1);
    assert!(
        superuser.json()["items"][0].get("tokenKey").is_none(),
        "never output, even to superusers"
    );
}

#[test]
fn bad_input_is_a_client_error() {
    let server = TestServer::start();
    let admin = server.admin();
    server.create_collection(
        &admin,
        json!({"name": "posts", "listRule": "", "createRule": "",
        "fields": [{"name": "meta", "type": "json"}, {"name": "title", "type": "text"}]}),
    );
    let malformed = ["{", "[1,2]", "\"text\"", "{\"title\": }", "nul", "{\"a\":1}{"];
    for body in malformed {
        let response =
            server.post("/api/collections/posts/records").raw("application/json", body).send();
        assert_eq!(response.status, 400, "{body}");
        assert_eq!(
            response.json()["message"],
            "Failed to load the submitted data due to invalid formatting."
        );
    }
    let mut deep = json!(1);
    for _ in 0..100 {
        deep = json!([deep]);
    }
    let too_deep =
        server.post("/api/collections/posts/records").json(&json!({"meta": deep})).send();
    assert_eq!(too_deep.status, 400);
    let long_filter = format!("title = '{}'", "x".repeat(20_000));
    let response = server
        .get(&format!("/api/collections/posts/records?filter={}", encode(&long_filter)))
        .send();
    assert_eq!(response.status, 400);
    let bad_name =
        server.post("/api/collections/posts/records").json(&json!({"meta": {"a.b": 1}})).send();
    assert_eq!(bad_name.status, 400, "nested names with a dot are not storable yet");
    assert_eq!(server.get("/api/collections/posts/records?sort=title,title,title,title,title,title,title,title,title").send().status, 400);
}

#[test]
fn bodies_are_limited_at_the_exact_byte() {
    const LIMIT: usize = 1024;
    let server = TestServer::start_with(|config| config.body_bytes_max = LIMIT);
    let admin = server.admin();
    server.create_collection(&admin, json!({"name": "posts", "createRule": "", "fields": [{"name": "title", "type": "text", "max": 2000}]}));
    let body_of = |len: usize| {
        let frame = json!({"title": ""}).to_string().len();
        json!({"title": "x".repeat(len - frame)}).to_string()
    };
    let at_limit = server
        .post("/api/collections/posts/records")
        .raw("application/json", body_of(LIMIT))
        .send();
    assert_eq!(at_limit.status, 200, "{}", at_limit.json());
    let over = server
        .post("/api/collections/posts/records")
        .raw("application/json", body_of(LIMIT + 1))
        .send();
    assert_eq!(over.status, 413);
    assert_eq!(over.json()["status"], 413);
    assert_eq!(over.json()["data"], json!({}));
    // Without a Content-Length (chunked), the limit holds while reading.
    let chunked = send_chunked(&server, "/api/collections/posts/records", &body_of(LIMIT + 10));
    assert!(chunked.starts_with("HTTP/1.1 413"), "{chunked}");
    let chunked_ok = send_chunked(&server, "/api/collections/posts/records", &body_of(LIMIT));
    assert!(chunked_ok.starts_with("HTTP/1.1 200"), "{chunked_ok}");
}

fn send_chunked(server: &TestServer, path: &str, body: &str) -> String {
    let mut stream = std::net::TcpStream::connect(server.address).unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).unwrap();
    for chunk in body.as_bytes().chunks(100) {
        let _ = stream.write_all(format!("{:x}\r\n", chunk.len()).as_bytes());
        let _ = stream.write_all(chunk);
        let _ = stream.write_all(b"\r\n");
    }
    let _ = stream.write_all(b"0\r\n\r\n");
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    response
}

#[test]
fn path_tricks_find_nothing() {
    let server = TestServer::start();
    let admin = server.admin();
    for path in [
        "/api/collections/..%2F..%2Fetc/records",
        "/api/collections/%2e%2e/records",
        "/api/collections/_pb_collections/records",
        "/api/collections/_pb_settings/records",
        "/api/collections/_pb_settings/records/server",
        "/api/collections/users%00/records",
        "/api/collections/users/records/..%2F..%2Fx",
        "/api/collections/users/records/%00",
        "/api/collections/_pb_collections",
    ] {
        let response = server.get(path).auth(Some(&admin)).send();
        assert_eq!(response.status, 404, "{path}");
        assert!(!String::from_utf8_lossy(&response.body).contains("tokenSecret"), "{path}");
    }
}

/// `_superusers` cannot be truncated, and its last record cannot be deleted, by a route or
/// a batch: either would leave nobody able to manage the server.
#[test]
fn the_last_superuser_stays() {
    let server = TestServer::start();
    let admin = server.admin();
    let truncate = server.delete("/api/collections/_superusers/truncate").auth(Some(&admin)).send();
    assert_eq!(truncate.status, 400, "{}", truncate.json());
    let list = server.get("/api/collections/_superusers/records").auth(Some(&admin)).send().json();
    let first = list["items"][0]["id"].as_str().unwrap().to_string();
    let path = |id: &str| format!("/api/collections/_superusers/records/{id}");
    let last = server.delete(&path(&first)).auth(Some(&admin)).send();
    assert_eq!(last.status, 400, "{}", last.json());
    assert_eq!(last.json()["message"], "The last superuser cannot be deleted.");
    let second = server.create_record(
        "_superusers",
        Some(&admin),
        json!({"email": "second@example.com", "password": "password-2",
               "passwordConfirm": "password-2"}),
    );
    let second = second["id"].as_str().unwrap().to_string();
    let both = json!({"requests": [
        {"method": "DELETE", "url": path(&first)},
        {"method": "DELETE", "url": path(&second)},
    ]});
    let batch = server.post("/api/batch").auth(Some(&admin)).json(&both).send();
    assert_eq!(batch.status, 400, "{}", batch.json());
    assert_eq!(server.delete(&path(&second)).auth(Some(&admin)).send().status, 204);
    assert_eq!(server.delete(&path(&first)).auth(Some(&admin)).send().status, 400);
    assert_eq!(server.get(&path(&first)).auth(Some(&admin)).send().status, 200);
}

/// A path segment that is not UTF-8 once decoded is a 400 in PocketBase's error shape, not
/// axum's plain text, on every route with segments.
#[test]
fn undecodable_path_segments_are_json_errors() {
    let server = TestServer::start();
    let admin = server.admin();
    for (method, path) in [
        ("GET", "/api/collections/%FF/records"),
        ("GET", "/api/collections/users/records/%FF%FE"),
        ("PATCH", "/api/collections/users/records/%C3"),
        ("DELETE", "/api/collections/%FF"),
        ("POST", "/api/collections/%FF/auth-with-password"),
    ] {
        let response = server.request(method, path).auth(Some(&admin)).send();
        assert_eq!(response.status, 400, "{method} {path}");
        let body = response.json();
        assert_eq!(body["status"], 400, "{method} {path}: {body}");
        assert!(body["data"].is_object() && body["message"].is_string(), "{body}");
    }
}
