//! Every rule outcome: locked (403 for all but superusers), empty (everyone), and a filter:
//! list keeps matching rows, view/update/delete 404 when the record does not match, create
//! 400 when the new record does not match; the `@request.*` values rules can read.

use super::server::{encode, TestServer};
use serde_json::{json, Value as Json};

fn posts(server: &TestServer, admin: &str, rules: Json) {
    let mut definition = json!({"name": "posts", "fields": [
        {"name": "title", "type": "text"},
        {"name": "published", "type": "bool"},
        {"name": "owner", "type": "relation", "collectionId": "users"},
        {"name": "due", "type": "date"},
    ]});
    for (key, value) in rules.as_object().unwrap() {
        definition[key] = value.clone();
    }
    server.create_collection(admin, definition);
}

fn id_of(record: &Json) -> String {
    record["id"].as_str().unwrap().to_string()
}

#[test]
fn locked_rules_are_for_superusers_only() {
    let server = TestServer::start();
    let admin = server.admin();
    posts(&server, &admin, json!({}));
    let record = server.create_record("posts", Some(&admin), json!({"title": "t"}));
    let path = format!("/api/collections/posts/records/{}", id_of(&record));
    let (user, _) = server.user("users", "u@example.com", "password-1");
    let expected =
        json!({"data": {}, "message": "Only superusers can perform this action.", "status": 403});
    for token in [None, Some(user.as_str())] {
        let calls = [
            server.get("/api/collections/posts/records").auth(token).send(),
            server.get(&path).auth(token).send(),
            server
                .post("/api/collections/posts/records")
                .auth(token)
                .json(&json!({"title": "x"}))
                .send(),
            server.patch(&path).auth(token).json(&json!({"title": "x"})).send(),
            server.delete(&path).auth(token).send(),
        ];
        for response in calls {
            assert_eq!(response.status, 403, "{token:?}");
            assert_eq!(response.json(), expected);
        }
    }
    assert_eq!(
        server.get("/api/collections/posts/records").auth(Some(&admin)).send().json()["totalItems"],
        1
    );
    assert_eq!(server.get(&path).auth(Some(&admin)).send().status, 200);
    assert_eq!(
        server.patch(&path).auth(Some(&admin)).json(&json!({"title": "y"})).send().status,
        200
    );
    assert_eq!(server.delete(&path).auth(Some(&admin)).send().status, 204);
}

#[test]
fn empty_rules_let_everyone_in() {
    let server = TestServer::start();
    let admin = server.admin();
    posts(
        &server,
        &admin,
        json!({"listRule": "", "viewRule": "", "createRule": "", "updateRule": "", "deleteRule": ""}),
    );
    let record = server.create_record("posts", None, json!({"title": "guest"}));
    let path = format!("/api/collections/posts/records/{}", id_of(&record));
    assert_eq!(server.get("/api/collections/posts/records").send().json()["totalItems"], 1);
    assert_eq!(server.get(&path).send().status, 200);
    assert_eq!(server.patch(&path).json(&json!({"title": "g2"})).send().json()["title"], "g2");
    assert_eq!(server.delete(&path).send().status, 204);
}

#[test]
fn list_rules_filter_rows() {
    let server = TestServer::start();
    let admin = server.admin();
    posts(
        &server,
        &admin,
        json!({"listRule": "published = true || @request.auth.id != ''", "createRule": ""}),
    );
    for (title, published) in [("a", true), ("b", false), ("c", true)] {
        server.create_record("posts", None, json!({"title": title, "published": published}));
    }
    let guest = server.get("/api/collections/posts/records?sort=title").send().json();
    let titles: Vec<&str> =
        guest["items"].as_array().unwrap().iter().map(|i| i["title"].as_str().unwrap()).collect();
    assert_eq!(titles, ["a", "c"]);
    assert_eq!(guest["totalItems"], 2, "the count honours the rule too");
    let filtered = server
        .get(&format!("/api/collections/posts/records?filter={}", encode("title = 'b'")))
        .send()
        .json();
    assert_eq!(filtered["totalItems"], 0, "a client filter cannot widen the rule");
    let (user, _) = server.user("users", "u@example.com", "password-1");
    assert_eq!(
        server.get("/api/collections/posts/records").auth(Some(&user)).send().json()["totalItems"],
        3
    );
}

#[test]
fn owner_rules_hide_other_users_records() {
    let server = TestServer::start();
    let admin = server.admin();
    let owner = "owner = @request.auth.id";
    posts(
        &server,
        &admin,
        json!({"listRule": owner, "viewRule": owner, "updateRule": owner, "deleteRule": owner,
        "createRule": "@request.auth.id != '' && owner = @request.auth.id"}),
    );
    let (alice, alice_record) = server.user("users", "alice@example.com", "password-1");
    let (bob, bob_record) = server.user("users", "bob@example.com", "password-1");
    let mine = server.create_record(
        "posts",
        Some(&alice),
        json!({"title": "alice's", "owner": alice_record["id"]}),
    );
    let path = format!("/api/collections/posts/records/{}", id_of(&mine));

    let for_someone_else = server
        .post("/api/collections/posts/records")
        .auth(Some(&bob))
        .json(&json!({"title": "forged", "owner": alice_record["id"]}))
        .send();
    assert_eq!(for_someone_else.status, 400);
    assert_eq!(
        for_someone_else.json(),
        json!({"data": {}, "message": "Failed to create record.", "status": 400})
    );
    let guest_create =
        server.post("/api/collections/posts/records").json(&json!({"title": "g"})).send();
    assert_eq!(guest_create.status, 400);
    server.create_record("posts", Some(&bob), json!({"title": "bob's", "owner": bob_record["id"]}));

    let bob_list = server.get("/api/collections/posts/records").auth(Some(&bob)).send().json();
    assert_eq!(bob_list["totalItems"], 1);
    assert_eq!(bob_list["items"][0]["title"], "bob's");
    assert_eq!(server.get(&path).auth(Some(&bob)).send().status, 404);
    assert_eq!(server.get(&path).send().status, 404);
    let update = server.patch(&path).auth(Some(&bob)).json(&json!({"title": "hacked"})).send();
    assert_eq!(update.status, 404);
    assert_eq!(server.delete(&path).auth(Some(&bob)).send().status, 404);
    let still = server.get(&path).auth(Some(&alice)).send().json();
    assert_eq!(still["title"], "alice's", "nothing changed");
    let own_update =
        server.patch(&path).auth(Some(&alice)).json(&json!({"title": "renamed"})).send();
    assert_eq!(own_update.status, 200);
    assert_eq!(server.delete(&path).auth(Some(&alice)).send().status, 204);
}

#[test]
fn rules_read_request_body_query_method_and_headers() {
    let server = TestServer::start();
    let admin = server.admin();
    posts(
        &server,
        &admin,
        json!({
            "listRule": "@request.query.key = 'open'",
            "viewRule": "@request.method = 'GET' && @request.headers.x_token = 'abc'",
            "createRule": "@request.body.title != 'forbidden' && @request.body.published:isset = false",
            "updateRule": "@request.body.owner:changed = false",
            "deleteRule": "@request.query.confirm = 'yes'",
        }),
    );
    let created = server.create_record("posts", None, json!({"title": "ok"}));
    let path = format!("/api/collections/posts/records/{}", id_of(&created));
    let forbidden =
        server.post("/api/collections/posts/records").json(&json!({"title": "forbidden"})).send();
    assert_eq!(forbidden.status, 400);
    let with_published = server
        .post("/api/collections/posts/records")
        .json(&json!({"title": "ok", "published": false}))
        .send();
    assert_eq!(with_published.status, 400, ":isset sees the key");

    assert_eq!(server.get("/api/collections/posts/records").send().json()["totalItems"], 0);
    assert_eq!(
        server.get("/api/collections/posts/records?key=open").send().json()["totalItems"],
        1
    );
    assert_eq!(server.get(&path).send().status, 404);
    assert_eq!(server.get(&path).header("X-Token", "abc").send().status, 200);

    let (_, user) = server.user("users", "u@example.com", "password-1");
    let changes_owner = server.patch(&path).json(&json!({"owner": user["id"]})).send();
    assert_eq!(changes_owner.status, 404, ":changed sees a new owner");
    let keeps_owner = server.patch(&path).json(&json!({"title": "t2", "owner": ""})).send();
    assert_eq!(keeps_owner.status, 200, "setting the same (empty) owner is no change");

    assert_eq!(server.delete(&path).send().status, 404);
    assert_eq!(server.delete(&format!("{path}?confirm=yes")).send().status, 204);
}

#[test]
fn date_macros_work_in_rules() {
    let server = TestServer::start();
    let admin = server.admin();
    posts(&server, &admin, json!({"listRule": "due > @now", "createRule": ""}));
    server.create_record(
        "posts",
        None,
        json!({"title": "past", "due": "2000-01-01 00:00:00.000Z"}),
    );
    server.create_record(
        "posts",
        None,
        json!({"title": "future", "due": "2999-01-01 00:00:00.000Z"}),
    );
    let list = server.get("/api/collections/posts/records").send().json();
    assert_eq!(list["totalItems"], 1);
    assert_eq!(list["items"][0]["title"], "future");
}

#[test]
fn client_filters_cannot_use_request_or_collection_variables() {
    let server = TestServer::start();
    let admin = server.admin();
    posts(&server, &admin, json!({"listRule": ""}));
    let (user, _) = server.user("users", "u@example.com", "password-1");
    for (filter, word) in
        [("@request.auth.id != ''", "@request."), ("@collection.users.id != ''", "@collection.")]
    {
        for token in [None, Some(user.as_str())] {
            let response = server
                .get(&format!("/api/collections/posts/records?filter={}", encode(filter)))
                .auth(token)
                .send();
            assert_eq!(response.status, 403, "{filter}");
            assert_eq!(response.json()["message"], format!("Only superusers can filter by {word}"));
        }
    }
    let sort = server.get("/api/collections/posts/records?sort=@request.auth.id").send();
    assert_eq!(sort.status, 403);
    let superuser = server
        .get(&format!("/api/collections/posts/records?filter={}", encode("@request.auth.id != ''")))
        .auth(Some(&admin))
        .send();
    assert_eq!(superuser.status, 200);
}

#[test]
fn view_rules_apply_to_expanded_records() {
    let server = TestServer::start();
    let admin = server.admin();
    server.create_collection(
        &admin,
        json!({"name": "secrets", "createRule": "",
        "viewRule": "@request.auth.id != ''", "fields": [{"name": "text", "type": "text"}]}),
    );
    server.create_collection(
        &admin,
        json!({"name": "cards", "listRule": "", "viewRule": "", "createRule": "",
        "fields": [{"name": "secret", "type": "relation", "collectionId": "secrets"}]}),
    );
    let secret = server.create_record("secrets", None, json!({"text": "hidden"}));
    server.create_record("cards", None, json!({"secret": secret["id"]}));
    let guest = server.get("/api/collections/cards/records?expand=secret").send().json();
    assert!(guest["items"][0].get("expand").is_none(), "{guest}");
    assert_eq!(guest["items"][0]["secret"], secret["id"], "the id itself stays");
    let (user, _) = server.user("users", "u@example.com", "password-1");
    let member =
        server.get("/api/collections/cards/records?expand=secret").auth(Some(&user)).send().json();
    assert_eq!(member["items"][0]["expand"]["secret"]["text"], "hidden");
}
