//! Realtime: the SSE stream (`PB_CONNECT`, PocketBase's framing), subscriptions with
//! options, create/update/delete events in commit order, rules per subscriber and event
//! (other users' records never leak, forged tokens are guests, a password change revokes a
//! client's auth), the subscription request's errors, and the limits: client count, queue
//! (a slow client is dropped), idle timeout with pings, a lagging feed, shutdown.

use super::server::{encode, TestServer};
use super::sse::{Next, SseClient};
use serde_json::{json, Value as Json};
use std::time::Duration;

const QUIET: Duration = Duration::from_millis(300);

/// Sets the subscriptions of client `id` as `token`; the response status.
fn subscribe(server: &TestServer, id: &str, token: Option<&str>, subscriptions: &[&str]) -> u16 {
    let response = server
        .post("/api/realtime")
        .auth(token)
        .json(&json!({"clientId": id, "subscriptions": subscriptions}))
        .send();
    assert!(response.body.is_empty() || response.status != 204);
    response.status
}

fn posts(server: &TestServer, admin: &str) {
    server.create_collection(
        admin,
        json!({"name": "posts", "listRule": "", "viewRule": "", "createRule": "",
        "updateRule": "", "deleteRule": "", "fields": [
            {"name": "title", "type": "text"}, {"name": "n", "type": "number"},
            {"name": "author", "type": "relation", "collectionId": "users"},
        ]}),
    );
}

fn notes(server: &TestServer, admin: &str) {
    let owner = "owner = @request.auth.id";
    server.create_collection(
        admin,
        json!({"name": "notes", "listRule": owner, "viewRule": owner, "createRule": "",
        "updateRule": owner, "deleteRule": owner, "fields": [
            {"name": "text", "type": "text"},
            {"name": "owner", "type": "relation", "collectionId": "users"},
        ]}),
    );
}

#[test]
fn connect_sends_pb_connect_with_the_client_id() {
    let server = TestServer::start();
    let client = SseClient::connect(server.address);
    assert_eq!(client.client_id.len(), 40);
    assert!(client.client_id.chars().all(|c| c.is_ascii_alphanumeric()));
    let head = client.head.to_ascii_lowercase();
    assert!(head.contains("content-type: text/event-stream"), "{head}");
    assert!(head.contains("cache-control: no-store") && head.contains("x-accel-buffering: no"));
    assert_eq!(subscribe(&server, &client.client_id, None, &[]), 204);
}

#[test]
fn create_update_delete_events_with_options() {
    let server = TestServer::start();
    let admin = server.admin();
    posts(&server, &admin);
    let (token, user) = server.user("users", "u@example.com", "password-1");
    let mut client = SseClient::connect(server.address);
    let options = json!({"query": {"expand": "author", "fields": "id,title,expand.author.id"}});
    let with_options = format!("posts/*?options={}", encode(&options.to_string()));
    let filtered =
        format!("posts/*?options={}", encode(&json!({"query": {"filter": "n > 10"}}).to_string()));
    let all = ["posts/*", with_options.as_str(), filtered.as_str()];
    assert_eq!(subscribe(&server, &client.client_id, Some(&token), &all), 204);

    let record =
        server.create_record("posts", None, json!({"title": "a", "n": 1, "author": user["id"]}));
    let id = record["id"].as_str().unwrap();
    let plain = client.expect();
    assert_eq!((plain.event.as_str(), plain.id.as_str()), ("posts/*", client.client_id.as_str()));
    assert_eq!(plain.json(), json!({"action": "create", "record": record}));
    let shaped = client.expect();
    assert_eq!(shaped.event, with_options, "the event name is the subscription as submitted");
    assert_eq!(
        shaped.json(),
        json!({"action": "create", "record": {"id": id, "title": "a", "expand": {"author": {"id": user["id"]}}}})
    );
    client.expect_nothing(QUIET); // n = 1 does not pass the third one's filter

    let path = format!("/api/collections/posts/records/{id}");
    let updated = server.patch(&path).json(&json!({"n": 11})).send().json();
    for expected in ["posts/*", with_options.as_str(), filtered.as_str()] {
        let message = client.expect();
        assert_eq!(message.event, expected);
        assert_eq!(message.json()["action"], "update");
    }
    assert_eq!(server.delete(&path).send().status, 204);
    let mut deleted = Vec::new();
    for _ in 0..3 {
        deleted.push(client.expect());
    }
    assert!(deleted.iter().all(|m| m.json()["action"] == "delete"));
    assert_eq!(deleted[0].json()["record"], updated, "a delete carries the last version");
}

#[test]
fn record_topics_see_only_their_record_and_batches_arrive_whole() {
    let server = TestServer::start();
    let admin = server.admin();
    posts(&server, &admin);
    let first = server.create_record("posts", None, json!({"title": "one"}));
    let id = first["id"].as_str().unwrap().to_string();
    let mut client = SseClient::connect(server.address);
    let topic = format!("posts/{id}");
    assert_eq!(subscribe(&server, &client.client_id, None, &[&topic]), 204);
    server.create_record("posts", None, json!({"title": "other"}));
    client.expect_nothing(QUIET);
    server
        .patch(&format!("/api/collections/posts/records/{id}"))
        .json(&json!({"title": "1"}))
        .send();
    let message = client.expect();
    assert_eq!(
        (message.event.as_str(), message.json()["record"]["title"].clone()),
        (topic.as_str(), json!("1"))
    );

    // A subscription request replaces the whole set.
    assert_eq!(subscribe(&server, &client.client_id, None, &["posts"]), 204);
    let batch = json!({"requests": [
        {"method": "create", "collection": "posts", "data": {"title": "b1"}},
        {"method": "create", "collection": "posts", "data": {"title": "b2"}},
        {"method": "delete", "collection": "posts", "id": id},
    ]});
    assert_eq!(server.post("/api/batch").json(&batch).send().status, 200);
    let actions: Vec<Json> = (0..3).map(|_| client.expect().json()["action"].clone()).collect();
    assert_eq!(actions, [json!("create"), json!("create"), json!("delete")]);
    let failed = json!({"requests": [
        {"method": "create", "collection": "posts", "data": {"title": "never"}},
        {"method": "delete", "collection": "posts", "id": "missingmissingx"},
    ]});
    assert_eq!(server.post("/api/batch").json(&failed).send().status, 400);
    client.expect_nothing(QUIET); // a rolled-back batch sends nothing
}

#[test]
fn rules_decide_per_subscriber_and_event() {
    let server = TestServer::start();
    let admin = server.admin();
    notes(&server, &admin);
    let (alice, alice_record) = server.user("users", "alice@example.com", "password-1");
    let (bob, bob_record) = server.user("users", "bob@example.com", "password-1");
    let mut as_alice = SseClient::connect(server.address);
    let mut as_bob = SseClient::connect(server.address);
    let mut as_guest = SseClient::connect(server.address);
    let mut forged = SseClient::connect(server.address);
    let mut as_admin = SseClient::connect(server.address);
    let forged_token = format!("{}x", &alice[..alice.len() - 1]);
    for (client, token) in [
        (&as_alice, Some(alice.as_str())),
        (&as_bob, Some(bob.as_str())),
        (&as_guest, None),
        (&forged, Some(forged_token.as_str())),
        (&as_admin, Some(admin.as_str())),
    ] {
        assert_eq!(subscribe(&server, &client.client_id, token, &["notes/*", "users/*"]), 204);
    }
    let note = server.create_record(
        "notes",
        Some(&alice),
        json!({"text": "secret", "owner": alice_record["id"]}),
    );
    let for_alice = as_alice.expect();
    assert_eq!(for_alice.json()["record"]["text"], "secret");
    assert_eq!(as_admin.expect().json()["record"]["id"], note["id"]);
    for client in [&mut as_bob, &mut as_guest, &mut forged] {
        client.expect_nothing(QUIET);
    }
    // The view rule for a record topic: Bob subscribing to Alice's note sees nothing.
    let topic = format!("notes/{}", note["id"].as_str().unwrap());
    assert_eq!(subscribe(&server, &as_bob.client_id, Some(&bob), &[&topic]), 204);
    let path = format!("/api/collections/notes/records/{}", note["id"].as_str().unwrap());
    server.patch(&path).auth(Some(&alice)).json(&json!({"text": "changed"})).send();
    assert_eq!(as_alice.expect().json()["action"], "update");
    assert_eq!(as_admin.expect().json()["action"], "update");
    as_bob.expect_nothing(QUIET);

    // users/*: the list rule is the owner's, so each sees only their own record; the email
    // shows only to its owner and superusers.
    let bob_path = format!("/api/collections/users/records/{}", bob_record["id"].as_str().unwrap());
    server.patch(&bob_path).auth(Some(&bob)).json(&json!({"name": "Bob"})).send();
    let seen = as_admin.expect().json();
    assert_eq!(seen["record"]["email"], "bob@example.com");
    assert!(seen["record"].get("password").is_none() && seen["record"].get("tokenKey").is_none());
    as_alice.expect_nothing(QUIET);
    forged.expect_nothing(QUIET);
}

#[test]
fn a_password_change_revokes_the_clients_auth() {
    let server = TestServer::start();
    let admin = server.admin();
    notes(&server, &admin);
    let (alice, alice_record) = server.user("users", "alice@example.com", "password-1");
    let alice_id = alice_record["id"].as_str().unwrap();
    let mut client = SseClient::connect(server.address);
    assert_eq!(subscribe(&server, &client.client_id, Some(&alice), &["notes/*"]), 204);
    server.create_record("notes", Some(&alice), json!({"text": "1", "owner": alice_id}));
    assert_eq!(client.expect().json()["record"]["text"], "1");
    let change = json!({"password": "password-2", "passwordConfirm": "password-2", "oldPassword": "password-1"});
    let response = server
        .patch(&format!("/api/collections/users/records/{alice_id}"))
        .auth(Some(&alice))
        .json(&change)
        .send();
    assert_eq!(response.status, 200);
    let new_token = server.login("users", "alice@example.com", "password-2").json()["token"]
        .as_str()
        .unwrap()
        .to_string();
    server.create_record("notes", Some(&new_token), json!({"text": "2", "owner": alice_id}));
    client.expect_nothing(QUIET);
    // The old token is now a guest's: the client (a guest again) may subscribe with it, and
    // log in anew with the new one.
    assert_eq!(subscribe(&server, &client.client_id, Some(&alice), &["notes/*"]), 204);
    assert_eq!(subscribe(&server, &client.client_id, Some(&new_token), &["notes/*"]), 204);
    server.create_record("notes", Some(&new_token), json!({"text": "3", "owner": alice_id}));
    assert_eq!(client.expect().json()["record"]["text"], "3");
}

#[test]
fn subscription_request_errors() {
    let server = TestServer::start();
    let admin = server.admin();
    let (alice, _) = server.user("users", "alice@example.com", "password-1");
    let (bob, _) = server.user("users", "bob@example.com", "password-1");
    let client = SseClient::connect(server.address);
    let id = client.client_id.as_str();
    let unknown =
        server.post("/api/realtime").json(&json!({"clientId": "nope", "subscriptions": []})).send();
    assert_eq!(
        (unknown.status, unknown.json()),
        (404, json!({"data": {}, "message": "Missing or invalid client id.", "status": 404}))
    );
    let post = |body: Json| server.post("/api/realtime").json(&body).send();
    let missing = post(json!({"subscriptions": []}));
    assert_eq!(missing.status, 400);
    assert_eq!(missing.json()["data"]["clientId"]["code"], "validation_required");
    let long_id = post(json!({"clientId": "x".repeat(256), "subscriptions": []}));
    assert_eq!(long_id.json()["data"]["clientId"]["code"], "validation_length_out_of_range");
    assert_eq!(
        post(json!({"clientId": "x".repeat(255), "subscriptions": []})).status,
        404,
        "255 bytes is allowed"
    );
    let many: Vec<String> = (0..1_001).map(|i| format!("posts/{i}")).collect();
    let too_many = post(json!({"clientId": id, "subscriptions": many}));
    assert_eq!(too_many.json()["data"]["subscriptions"]["code"], "validation_length_too_long");
    assert_eq!(
        post(json!({"clientId": id, "subscriptions": &many[..1_000]})).status,
        204,
        "1000 are allowed"
    );
    let forged = post(json!({"clientId": id, "subscriptions": ["posts/*\nevent:forged"]}));
    assert_eq!(forged.status, 400);
    assert_eq!(forged.json()["data"]["subscriptions.0"]["code"], "validation_invalid_value");
    assert_eq!(post(json!({"clientId": id, "subscriptions": "posts/*"})).status, 400);
    assert_eq!(server.post("/api/realtime").raw("application/json", "{").send().status, 400);

    // Auth: a guest may log in; then neither another user nor a guest may take over.
    assert_eq!(subscribe(&server, id, None, &["notes/*"]), 204);
    assert_eq!(subscribe(&server, id, Some(&alice), &["notes/*"]), 204);
    assert_eq!(subscribe(&server, id, Some(&alice), &["notes/*", "users/*"]), 204);
    let mismatch = server
        .post("/api/realtime")
        .auth(Some(&bob))
        .json(&json!({"clientId": id, "subscriptions": []}))
        .send();
    assert_eq!(mismatch.status, 403);
    assert_eq!(
        mismatch.json()["message"],
        "The current and the previous request authorization don't match."
    );
    assert_eq!(subscribe(&server, id, None, &[]), 403);
    assert_eq!(subscribe(&server, id, Some(&admin), &[]), 403);
}

#[test]
fn subscription_bytes_are_bounded_across_clients() {
    let server = TestServer::start_with(|config| {
        config.realtime_subscription_bytes_total_max = 21;
        config.realtime_ping_interval = Duration::from_millis(50);
    });
    let first = SseClient::connect(server.address);
    let second = SseClient::connect(server.address);
    assert_eq!(subscribe(&server, &first.client_id, None, &["posts/*", "users/*"]), 204);
    assert_eq!(subscribe(&server, &second.client_id, None, &["notes/*"]), 204, "21 bytes in all");
    assert_eq!(subscribe(&server, &second.client_id, None, &["notes/**"]), 429, "22 bytes");
    assert_eq!(subscribe(&server, &first.client_id, None, &["posts/*"]), 204, "a set is replaced");
    assert_eq!(subscribe(&server, &second.client_id, None, &["notes/*", "x/*"]), 204);
    let third = SseClient::connect(server.address);
    assert_eq!(subscribe(&server, &third.client_id, None, &["users/*"]), 429);
    drop(first);
    for _ in 0..200 {
        if subscribe(&server, &third.client_id, None, &["users/*"]) == 204 {
            return; // the first client's bytes came back when its stream ended
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("the bytes of a gone client were not given back");
}

#[test]
fn a_slow_client_is_dropped_not_buffered() {
    let server = TestServer::start_with(|config| {
        config.realtime_queue_messages_max = 4;
        config.realtime_queue_bytes_max = 8 * 1024 * 1024;
    });
    let admin = server.admin();
    server.create_collection(
        &admin,
        json!({"name": "blobs", "listRule": "", "createRule": "", "fields": [{"name": "body", "type": "json"}]}),
    );
    let mut slow = SseClient::connect(server.address);
    let mut fast = SseClient::connect(server.address);
    for client in [&slow, &fast] {
        assert_eq!(subscribe(&server, &client.client_id, None, &["blobs/*"]), 204);
    }
    // About 40 MB of events: far more than the socket buffers hold, so the slow client's
    // queue fills while it reads nothing.
    let body = "x".repeat(1_000_000);
    for i in 0..40 {
        server.create_record("blobs", None, json!({"body": {"i": i, "pad": body}}));
        assert!(matches!(fast.next(Duration::from_secs(10)), Next::Message(_)), "event {i}");
    }
    let delivered = slow.read_to_end(Duration::from_secs(20));
    assert!(delivered.len() < 40, "the slow client was dropped after {} events", delivered.len());
    assert_eq!(subscribe(&server, &slow.client_id, None, &[]), 404, "and forgotten");
    server.create_record("blobs", None, json!({"body": {"i": "after"}}));
    assert!(matches!(fast.next(Duration::from_secs(10)), Next::Message(_)), "others go on");
    let metrics = server.get("/metrics").send();
    if metrics.status == 200 {
        let text = String::from_utf8(metrics.body).unwrap();
        assert!(text.contains("nanodb_realtime_clients_dropped_slow_total 1"), "{text}");
    }
}

#[test]
fn idle_streams_get_pings_then_end() {
    let server = TestServer::start_with(|config| {
        config.realtime_ping_interval = Duration::from_millis(100);
        config.realtime_idle_timeout = Duration::from_millis(700);
    });
    let mut client = SseClient::connect(server.address);
    let started = std::time::Instant::now();
    assert_eq!(client.read_to_end(Duration::from_secs(5)), []);
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(600) && elapsed < Duration::from_secs(3),
        "{elapsed:?}"
    );
    assert!(client.pings >= 3, "pings: {}", client.pings);
    assert_eq!(
        subscribe(&server, &client.client_id, None, &[]),
        404,
        "the ended client is forgotten"
    );
}

#[test]
fn the_client_limit_holds_at_its_boundary() {
    let server = TestServer::start_with(|config| {
        config.realtime_clients_max = 2;
        config.realtime_ping_interval = Duration::from_millis(50);
    });
    let first = SseClient::connect(server.address);
    let _second = SseClient::connect(server.address);
    let (status, _, _) = SseClient::open(server.address);
    assert_eq!(status, 429);
    drop(first);
    // The server notices the closed connection when it next writes or polls it.
    for _ in 0..100 {
        let (status, _, _) = SseClient::open(server.address);
        if status == 200 {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("a freed slot was not reused");
}

#[test]
fn a_lagging_feed_drops_every_client_who_then_reconnect() {
    let server = TestServer::start_with(|config| config.realtime_feed_buffer_events = 2);
    let admin = server.admin();
    posts(&server, &admin);
    let mut client = SseClient::connect(server.address);
    assert_eq!(subscribe(&server, &client.client_id, None, &["posts/*"]), 204);
    server.create_record("posts", None, json!({"title": "one"}));
    assert_eq!(client.expect().json()["record"]["title"], "one");
    // One commit of three changes overflows a feed buffer of two events at once.
    let batch = json!({"requests": [
        {"method": "create", "collection": "posts", "data": {"title": "a"}},
        {"method": "create", "collection": "posts", "data": {"title": "b"}},
        {"method": "create", "collection": "posts", "data": {"title": "c"}},
    ]});
    assert_eq!(server.post("/api/batch").json(&batch).send().status, 200);
    let rest = client.read_to_end(Duration::from_secs(5));
    assert!(rest.len() < 3, "the stream ends instead of losing events silently: {rest:?}");
    let mut again = SseClient::connect(server.address);
    assert_eq!(subscribe(&server, &again.client_id, None, &["posts/*"]), 204);
    server.create_record("posts", None, json!({"title": "after"}));
    assert_eq!(again.expect().json()["record"]["title"], "after");
}

#[test]
fn shutdown_ends_streams_and_a_restarted_server_serves_new_ones() {
    let server = TestServer::start();
    let admin = server.admin();
    posts(&server, &admin);
    let mut client = SseClient::connect(server.address);
    assert_eq!(subscribe(&server, &client.client_id, None, &["posts/*"]), 204);
    let server = server.restart(); // a graceful stop: it must not wait for the stream
    assert!(client.read_to_end(Duration::from_secs(5)).is_empty());
    let mut again = SseClient::connect(server.address);
    assert_eq!(subscribe(&server, &again.client_id, None, &["posts/*"]), 204);
    server.create_record("posts", None, json!({"title": "after restart"}));
    assert_eq!(again.expect().json()["action"], "create");
}
