//! The collections API: superusers only; create, list, view, update, delete, truncate;
//! field, rule and index validation; system collection protections.

use super::server::{encode, TestServer};
use serde_json::{json, Value as Json};

fn posts() -> Json {
    json!({
        "name": "posts",
        "listRule": "", "viewRule": "", "createRule": "", "updateRule": "", "deleteRule": "",
        "fields": [
            {"name": "title", "type": "text", "required": true, "max": 50},
            {"name": "n", "type": "number"},
            {"name": "published", "type": "bool"},
        ],
        "indexes": ["CREATE UNIQUE INDEX idx_title ON posts (title)"],
    })
}

#[test]
fn only_superusers_use_the_collections_api() {
    let server = TestServer::start();
    let (user, _) = server.user("users", "u@example.com", "password-1");
    let routes = [
        ("GET", "/api/collections"),
        ("POST", "/api/collections"),
        ("GET", "/api/collections/users"),
        ("PATCH", "/api/collections/users"),
        ("DELETE", "/api/collections/users"),
        ("DELETE", "/api/collections/users/truncate"),
    ];
    for (method, path) in routes {
        let guest = server.request(method, path).json(&json!({})).send();
        assert_eq!(guest.status, 401, "{method} {path}");
        assert_eq!(guest.json()["status"], 401);
        let record = server.request(method, path).auth(Some(&user)).json(&json!({})).send();
        assert_eq!(record.status, 403, "{method} {path}");
    }
}

#[test]
fn default_collections_exist() {
    let server = TestServer::start();
    let admin = server.admin();
    let list = server.get("/api/collections").auth(Some(&admin)).send().json();
    let names: Vec<&str> =
        list["items"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["_superusers", "users"]);
    assert_eq!(list["totalItems"], 2);
    let superusers = server.get("/api/collections/_superusers").auth(Some(&admin)).send().json();
    assert_eq!(superusers["id"], "pbc_3142635823");
    assert_eq!(superusers["type"], "auth");
    assert_eq!(superusers["system"], true);
    assert_eq!(superusers["listRule"], Json::Null);
    let users = server.get("/api/collections/users").auth(Some(&admin)).send().json();
    assert_eq!(users["id"], "_pb_users_auth_");
    assert_eq!(users["listRule"], "id = @request.auth.id");
    assert_eq!(users["createRule"], "");
    assert_eq!(users["authToken"]["duration"], 432000);
    assert!(users["authToken"].get("secret").is_none(), "secrets are never output");
    let by_id = server.get("/api/collections/_pb_users_auth_").auth(Some(&admin)).send().json();
    assert_eq!(by_id["name"], "users");
}

#[test]
fn create_view_list_update_delete() {
    let server = TestServer::start();
    let admin = server.admin();
    let created = server.create_collection(&admin, posts());
    assert_eq!(created["id"], "pbc_1125843985", "PocketBase's default id");
    assert_eq!(created["type"], "base");
    let names: Vec<&str> =
        created["fields"].as_array().unwrap().iter().map(|f| f["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["id", "title", "n", "published", "created", "updated"]);
    assert!(created["created"].as_str().unwrap().ends_with('Z'));

    let filtered = server
        .get(&format!("/api/collections?filter={}&sort=-name", encode("name ~ 'post'")))
        .auth(Some(&admin))
        .send()
        .json();
    assert_eq!(filtered["totalItems"], 1);
    assert_eq!(filtered["items"][0]["name"], "posts");

    let renamed = server
        .patch("/api/collections/posts")
        .auth(Some(&admin))
        .json(&json!({"name": "articles", "listRule": null}))
        .send();
    assert_eq!(renamed.status, 200, "{}", renamed.json());
    assert_eq!(renamed.json()["name"], "articles");
    assert_eq!(renamed.json()["listRule"], Json::Null);
    assert_eq!(renamed.json()["viewRule"], "", "keys not given are kept");
    assert_eq!(server.get("/api/collections/posts").auth(Some(&admin)).send().status, 404);
    assert_eq!(server.get("/api/collections/ARTICLES").auth(Some(&admin)).send().status, 200);

    let deleted = server.delete("/api/collections/articles").auth(Some(&admin)).send();
    assert_eq!(deleted.status, 204);
    assert!(deleted.body.is_empty());
    let missing = server.get("/api/collections/articles").auth(Some(&admin)).send();
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json()["message"], "Missing collection context.");
    let update_missing =
        server.patch("/api/collections/articles").auth(Some(&admin)).json(&json!({})).send();
    assert_eq!(update_missing.status, 404);
    assert_eq!(server.delete("/api/collections/articles").auth(Some(&admin)).send().status, 404);
    let bad_filter = server.get("/api/collections?filter=name%20%3D").auth(Some(&admin)).send();
    assert_eq!(bad_filter.status, 400);
    let paged = server.get("/api/collections?perPage=1&page=2").auth(Some(&admin)).send().json();
    assert_eq!(
        (paged["items"][0]["name"].clone(), paged["totalPages"].clone()),
        (json!("users"), json!(2))
    );
}

#[test]
fn records_survive_rename_and_field_changes_migrate_data() {
    let server = TestServer::start();
    let admin = server.admin();
    server.create_collection(&admin, posts());
    let record = server.create_record("posts", Some(&admin), json!({"title": "a", "n": 5}));
    let id = record["id"].as_str().unwrap();
    let definition = server.get("/api/collections/posts").auth(Some(&admin)).send().json();
    let mut fields = definition["fields"].as_array().unwrap().clone();
    // Rename n to count (same field id), drop published, add a bool flag.
    for field in &mut fields {
        if field["name"] == "n" {
            field["name"] = json!("count");
        }
    }
    fields.retain(|field| field["name"] != "published");
    fields.push(json!({"name": "flag", "type": "bool"}));
    let updated = server
        .patch("/api/collections/posts")
        .auth(Some(&admin))
        .json(&json!({"name": "items", "fields": fields}))
        .send();
    assert_eq!(updated.status, 200, "{}", updated.json());
    let after = server.get(&format!("/api/collections/items/records/{id}")).send().json();
    assert_eq!(after["count"], 5, "renamed field keeps its value: {after}");
    assert!(after.get("n").is_none() && after.get("published").is_none());
    let flagged = server
        .get(&format!("/api/collections/items/records?filter={}", encode("flag = false")))
        .send()
        .json();
    assert_eq!(flagged["totalItems"], 1, "old records get the new bool's zero value");
}

#[test]
fn invalid_definitions_are_400_with_field_errors() {
    let server = TestServer::start();
    let admin = server.admin();
    let cases = [
        (json!({"name": ""}), "name"),
        (json!({"name": "a b"}), "name"),
        (json!({"name": "../etc"}), "name"),
        (json!({"name": "x", "type": "view"}), "type"),
        (json!({"name": "x", "fields": [{"name": "f", "type": "file"}]}), "fields.0.type"),
        (json!({"name": "x", "fields": [{"name": "f", "type": "nope"}]}), "fields.0.type"),
        (
            json!({"name": "x", "fields": [{"name": "r", "type": "relation", "collectionId": "ghost"}]}),
            "fields.1.collectionId",
        ),
        (json!({"name": "x", "fields": [{"name": "expand", "type": "text"}]}), "expand"),
        (json!({"name": "x", "listRule": "nope = 1"}), "listRule"),
        (json!({"name": "x", "viewRule": "(("}), "viewRule"),
        (json!({"name": "x", "indexes": ["CREATE INDEX i ON x (ghost)"]}), "indexes.0"),
        (json!({"name": "x", "indexes": ["DROP TABLE users"]}), "indexes.0"),
        (json!({"name": "x", "id": "_pb_collections"}), "id"),
        (json!({"name": "x", "id": "../../x"}), "id"),
    ];
    for (body, key) in cases {
        let response = server.post("/api/collections").auth(Some(&admin)).json(&body).send();
        assert_eq!(response.status, 400, "{body}");
        let json = response.json();
        assert_eq!(json["message"], "An error occurred while submitting the form.", "{body}");
        assert!(json["data"][key]["code"].is_string(), "{body}: {json}");
    }
    server.create_collection(&admin, posts());
    let duplicate =
        server.post("/api/collections").auth(Some(&admin)).json(&json!({"name": "POSTS"})).send();
    assert_eq!(duplicate.status, 400);
    let type_change = server
        .patch("/api/collections/posts")
        .auth(Some(&admin))
        .json(&json!({"type": "auth"}))
        .send();
    assert_eq!(type_change.status, 400);
}

#[test]
fn unique_indexes_are_built_and_refused_over_duplicates() {
    let server = TestServer::start();
    let admin = server.admin();
    server.create_collection(
        &admin,
        json!({"name": "tags", "createRule": "",
        "fields": [{"name": "label", "type": "text"}]}),
    );
    for _ in 0..2 {
        server.create_record("tags", None, json!({"label": "same"}));
    }
    let unique = server
        .patch("/api/collections/tags")
        .auth(Some(&admin))
        .json(&json!({"indexes": ["CREATE UNIQUE INDEX idx_label ON tags (label)"]}))
        .send();
    assert_eq!(unique.status, 400, "duplicates already stored");
    assert_eq!(unique.json()["data"]["indexes.0"]["code"], "validation_not_unique");
    let still = server.get("/api/collections/tags").auth(Some(&admin)).send().json();
    assert_eq!(still["indexes"], json!([]), "the definition did not change");
    let plain = server
        .patch("/api/collections/tags")
        .auth(Some(&admin))
        .json(&json!({"indexes": ["CREATE INDEX idx_label ON tags (label DESC)"]}))
        .send();
    assert_eq!(plain.status, 200, "{}", plain.json());
}

#[test]
fn truncate_deletes_every_record_and_keeps_the_collection() {
    let server = TestServer::start();
    let admin = server.admin();
    server.create_collection(&admin, posts());
    for title in ["a", "b", "c"] {
        server.create_record("posts", None, json!({"title": title}));
    }
    let response = server.delete("/api/collections/posts/truncate").auth(Some(&admin)).send();
    assert_eq!(response.status, 204);
    let list = server.get("/api/collections/posts/records").send().json();
    assert_eq!(list["totalItems"], 0);
    server.create_record("posts", None, json!({"title": "a"}));
    let duplicate =
        server.post("/api/collections/posts/records").json(&json!({"title": "a"})).send();
    assert_eq!(duplicate.status, 400, "the unique index was rebuilt");
    assert_eq!(
        server.delete("/api/collections/ghost/truncate").auth(Some(&admin)).send().status,
        404
    );
}

#[test]
fn system_and_referenced_collections_are_protected() {
    let server = TestServer::start();
    let admin = server.admin();
    let delete_system = server.delete("/api/collections/_superusers").auth(Some(&admin)).send();
    assert_eq!(delete_system.status, 400);
    let open_superusers = server
        .patch("/api/collections/_superusers")
        .auth(Some(&admin))
        .json(&json!({"listRule": ""}))
        .send();
    assert_eq!(open_superusers.status, 400);
    server.create_collection(&admin, json!({"name": "authors"}));
    server.create_collection(
        &admin,
        json!({"name": "books",
        "fields": [{"name": "author", "type": "relation", "collectionId": "authors"}]}),
    );
    let referenced = server.delete("/api/collections/authors").auth(Some(&admin)).send();
    assert_eq!(referenced.status, 400);
    assert_eq!(server.delete("/api/collections/books").auth(Some(&admin)).send().status, 204);
    assert_eq!(server.delete("/api/collections/authors").auth(Some(&admin)).send().status, 204);
}

#[test]
fn auth_collections_get_their_system_fields_and_indexes() {
    let server = TestServer::start();
    let admin = server.admin();
    let members = server.create_collection(
        &admin,
        json!({"name": "members", "type": "auth",
        "fields": [{"name": "nick", "type": "text"}], "authToken": {"duration": 60}}),
    );
    let names: Vec<&str> =
        members["fields"].as_array().unwrap().iter().map(|f| f["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "id",
            "password",
            "tokenKey",
            "email",
            "emailVisibility",
            "verified",
            "nick",
            "created",
            "updated"
        ]
    );
    assert_eq!(members["indexes"].as_array().unwrap().len(), 2);
    assert_eq!(members["authToken"]["duration"], 60);
    assert_eq!(members["passwordAuth"]["enabled"], true);
}
