//! The records API: create, view, update (with modifiers), delete; every field type's
//! validation with PocketBase's codes; JSON, multipart and url-encoded bodies; list with
//! pages, sort, filter, skipTotal, fields and expand.

use super::server::{encode, TestServer};
use serde_json::{json, Value as Json};

/// A collection with one field of every type, open to everyone.
fn kitchen_sink(server: &TestServer, admin: &str) {
    server.create_collection(
        admin,
        json!({"name": "tags", "listRule": "", "viewRule": "", "createRule": "",
        "fields": [{"name": "label", "type": "text"}]}),
    );
    server.create_collection(admin, json!({
        "name": "items",
        "listRule": "", "viewRule": "", "createRule": "", "updateRule": "", "deleteRule": "",
        "fields": [
            {"name": "title", "type": "text", "required": true, "min": 2, "max": 10, "pattern": "^[a-z0-9 ]+$"},
            {"name": "n", "type": "number", "min": -100, "max": 100},
            {"name": "whole", "type": "number", "onlyInt": true},
            {"name": "done", "type": "bool"},
            {"name": "mail", "type": "email", "exceptDomains": ["spam.com"]},
            {"name": "site", "type": "url", "onlyDomains": ["example.org"]},
            {"name": "when", "type": "date", "min": "2000-01-01 00:00:00.000Z"},
            {"name": "color", "type": "select", "values": ["red", "green", "blue"]},
            {"name": "colors", "type": "select", "values": ["red", "green", "blue"], "maxSelect": 2},
            {"name": "meta", "type": "json", "maxSize": 100},
            {"name": "tag", "type": "relation", "collectionId": "tags"},
            {"name": "tagList", "type": "relation", "collectionId": "tags", "maxSelect": 5},
            {"name": "secret", "type": "text", "hidden": true},
        ],
        "indexes": ["CREATE UNIQUE INDEX idx_mail ON items (mail)"],
    }));
}

fn is_pocketbase_date(text: &Json) -> bool {
    let text = text.as_str().unwrap_or("");
    let bytes = text.as_bytes();
    text.len() == 24 && bytes[10] == b' ' && bytes[19] == b'.' && text.ends_with('Z')
}

#[test]
fn create_view_update_delete_round_trip() {
    let server = TestServer::start();
    let admin = server.admin();
    kitchen_sink(&server, &admin);
    let created = server.create_record("items", None, json!({"title": "first", "n": 1}));
    let id = created["id"].as_str().unwrap().to_string();
    assert!(
        id.len() == 15 && id.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()),
        "{id}"
    );
    assert_eq!(created["collectionName"], "items");
    assert!(created["collectionId"].as_str().unwrap().starts_with("pbc_"));
    assert!(
        is_pocketbase_date(&created["created"]) && is_pocketbase_date(&created["updated"]),
        "{created}"
    );
    let empty = json!({"whole": 0, "done": false, "mail": "", "site": "", "when": "", "color": "",
        "colors": [], "meta": null, "tag": "", "tagList": []});
    for (key, value) in empty.as_object().unwrap() {
        assert_eq!(&created[key], value, "empty value of {key}");
    }
    assert!(created.get("secret").is_none(), "hidden fields are not shown to guests");

    let viewed = server.get(&format!("/api/collections/items/records/{id}")).send();
    assert_eq!(viewed.status, 200);
    assert_eq!(viewed.json(), created);

    std::thread::sleep(std::time::Duration::from_millis(5));
    let updated = server
        .patch(&format!("/api/collections/items/records/{id}"))
        .json(&json!({"title": "second", "n+": 2, "colors+": ["red", "blue"], "ignored": 1}))
        .send();
    assert_eq!(updated.status, 200, "{}", updated.json());
    let updated = updated.json();
    assert_eq!((updated["title"].clone(), updated["n"].clone()), (json!("second"), json!(3)));
    assert_eq!(updated["colors"], json!(["red", "blue"]));
    assert!(updated.get("ignored").is_none());
    assert_eq!(updated["created"], created["created"]);
    assert_ne!(updated["updated"], created["updated"]);
    let decremented = server
        .patch(&format!("/api/collections/items/records/{id}"))
        .json(&json!({"n-": 5, "colors-": "red", "+colors": "green"}))
        .send()
        .json();
    assert_eq!(decremented["n"], -2);
    assert_eq!(decremented["colors"], json!(["green", "blue"]));

    let deleted = server.delete(&format!("/api/collections/items/records/{id}")).send();
    assert_eq!(deleted.status, 204);
    assert!(deleted.body.is_empty());
    let gone = server.get(&format!("/api/collections/items/records/{id}")).send();
    assert_eq!(gone.status, 404);
    assert_eq!(
        gone.json(),
        json!({"data": {}, "message": "The requested resource wasn't found.", "status": 404})
    );
    assert_eq!(server.delete(&format!("/api/collections/items/records/{id}")).send().status, 404);
    assert_eq!(
        server
            .patch(&format!("/api/collections/items/records/{id}"))
            .json(&json!({}))
            .send()
            .status,
        404
    );
    for (method, path) in [
        ("POST", "/api/collections/nope/records"),
        ("PATCH", "/api/collections/nope/records/aaaaaaaaaaaaaaa"),
        ("DELETE", "/api/collections/nope/records/aaaaaaaaaaaaaaa"),
        ("GET", "/api/collections/nope/records/aaaaaaaaaaaaaaa"),
    ] {
        let response = server.request(method, path).json(&json!({})).send();
        assert_eq!(response.status, 404, "{method} {path}");
        assert_eq!(response.json()["message"], "Missing collection context.");
    }
    let no_collection = server.get("/api/collections/nope/records").send();
    assert_eq!(
        (no_collection.status, no_collection.json()["message"].clone()),
        (404, json!("Missing collection context."))
    );
}

#[test]
fn every_field_type_is_validated_with_pocketbase_codes() {
    let server = TestServer::start();
    let admin = server.admin();
    kitchen_sink(&server, &admin);
    let cases = [
        (json!({}), "title", "validation_required"),
        (json!({"title": ""}), "title", "validation_required"),
        (json!({"title": "a"}), "title", "validation_min_text_constraint"),
        (json!({"title": "abcdefghijk"}), "title", "validation_max_text_constraint"),
        (json!({"title": "UPPER"}), "title", "validation_invalid_format"),
        (json!({"title": {"x": 1}}), "title", "validation_invalid_value"),
        (json!({"title": "ok", "n": "abc"}), "n", "validation_not_a_number"),
        (json!({"title": "ok", "n": 101}), "n", "validation_max_number_constraint"),
        (json!({"title": "ok", "n": -101}), "n", "validation_min_number_constraint"),
        (json!({"title": "ok", "whole": 1.5}), "whole", "validation_only_int_constraint"),
        (json!({"title": "ok", "done": "maybe"}), "done", "validation_invalid_value"),
        (json!({"title": "ok", "mail": "not-an-email"}), "mail", "validation_is_email"),
        (
            json!({"title": "ok", "mail": "a@spam.com"}),
            "mail",
            "validation_email_domain_not_allowed",
        ),
        (json!({"title": "ok", "site": "example.org"}), "site", "validation_is_url"),
        (
            json!({"title": "ok", "site": "https://evil.com/x"}),
            "site",
            "validation_url_domain_not_allowed",
        ),
        (json!({"title": "ok", "when": "yesterday"}), "when", "validation_invalid_date"),
        (
            json!({"title": "ok", "when": "1999-12-31 23:59:59.999Z"}),
            "when",
            "validation_min_date_constraint",
        ),
        (json!({"title": "ok", "color": "pink"}), "color", "validation_invalid_value"),
        (json!({"title": "ok", "color": ["red", "blue"]}), "color", "validation_too_many_values"),
        (
            json!({"title": "ok", "colors": ["red", "blue", "green"]}),
            "colors",
            "validation_too_many_values",
        ),
        (
            json!({"title": "ok", "meta": {"big": "x".repeat(200)}}),
            "meta",
            "validation_json_size_limit",
        ),
        (json!({"title": "ok", "tag": "aaaaaaaaaaaaaaa"}), "tag", "validation_missing_rel_records"),
        (
            json!({"title": "ok", "tagList": ["../../etc"]}),
            "tagList",
            "validation_missing_rel_records",
        ),
    ];
    for (body, field, code) in cases {
        let response = server.post("/api/collections/items/records").json(&body).send();
        assert_eq!(response.status, 400, "{body}");
        let json = response.json();
        assert_eq!(json["message"], "Failed to create record.", "{body}");
        assert_eq!(json["data"][field]["code"], code, "{body}: {json}");
        assert!(json["data"][field]["message"].is_string());
    }
    let several = server
        .post("/api/collections/items/records")
        .json(&json!({"n": "x", "color": "pink"}))
        .send()
        .json();
    let keys: Vec<&String> = several["data"].as_object().unwrap().keys().collect();
    assert_eq!(keys, ["color", "n", "title"], "every failure in one answer");
    let list = server.get("/api/collections/items/records").send().json();
    assert_eq!(list["totalItems"], 0, "nothing was written");
}

#[test]
fn values_are_cast_and_stored_in_their_types() {
    let server = TestServer::start();
    let admin = server.admin();
    kitchen_sink(&server, &admin);
    let tag = server.create_record("tags", None, json!({"label": "t"}));
    let tag_id = tag["id"].as_str().unwrap();
    let created = server.create_record(
        "items",
        None,
        json!({
            "title": "cast", "n": "7.5", "whole": "3", "done": "true", "mail": "A@B.org",
            "site": "https://example.org/page", "when": "2024-05-01T10:20:30Z", "color": "red",
            "colors": "green", "meta": {"a": [1, 2]}, "tag": tag_id, "tagList": [tag_id, tag_id],
        }),
    );
    let expected = json!({"n": 7.5, "whole": 3, "done": true, "mail": "A@B.org",
        "site": "https://example.org/page", "when": "2024-05-01 10:20:30.000Z", "color": "red",
        "colors": ["green"], "meta": {"a": [1, 2]}, "tag": tag_id, "tagList": [tag_id]});
    for (key, value) in expected.as_object().unwrap() {
        assert_eq!(&created[key], value, "{key}");
    }
    let by_date = server
        .get(&format!(
            "/api/collections/items/records?filter={}",
            encode("when > '2024-05-01' && when < '2024-05-02'")
        ))
        .send()
        .json();
    assert_eq!(by_date["totalItems"], 1, "dates compare as dates");
}

#[test]
fn ids_can_be_chosen_but_not_changed() {
    let server = TestServer::start();
    let admin = server.admin();
    kitchen_sink(&server, &admin);
    let chosen =
        server.create_record("items", None, json!({"id": "abcdefghij12345", "title": "ok"}));
    assert_eq!(chosen["id"], "abcdefghij12345");
    let cases = [
        (json!({"id": "short", "title": "ok"}), "validation_min_text_constraint"),
        (json!({"id": "abcdefghij123456", "title": "ok"}), "validation_max_text_constraint"),
        (json!({"id": "ABCDEFGHIJ12345", "title": "ok"}), "validation_invalid_format"),
        (json!({"id": "abcdefghij12345", "title": "ok"}), "validation_not_unique"),
    ];
    for (body, code) in cases {
        let response = server.post("/api/collections/items/records").json(&body).send();
        assert_eq!(response.status, 400, "{body}");
        assert_eq!(response.json()["data"]["id"]["code"], code, "{body}");
    }
    let change = server
        .patch("/api/collections/items/records/abcdefghij12345")
        .json(&json!({"id": "zzzzzzzzzzzzzzz"}))
        .send();
    assert_eq!(change.status, 400);
    assert_eq!(change.json()["data"]["id"]["code"], "validation_pk_change");
    let same = server
        .patch("/api/collections/items/records/abcdefghij12345")
        .json(&json!({"id": "abcdefghij12345"}))
        .send();
    assert_eq!(same.status, 200);
}

#[test]
fn unique_indexes_refuse_duplicates_but_not_empty_values() {
    let server = TestServer::start();
    let admin = server.admin();
    kitchen_sink(&server, &admin);
    server.create_record("items", None, json!({"title": "one", "mail": "x@y.org"}));
    let duplicate = server
        .post("/api/collections/items/records")
        .json(&json!({"title": "two", "mail": "x@y.org"}))
        .send();
    assert_eq!(duplicate.status, 400);
    assert_eq!(duplicate.json()["data"]["mail"]["code"], "validation_not_unique");
    server.create_record("items", None, json!({"title": "three"}));
    server.create_record("items", None, json!({"title": "four", "mail": ""}));
}

#[test]
fn multipart_and_urlencoded_bodies() {
    let server = TestServer::start();
    let admin = server.admin();
    kitchen_sink(&server, &admin);
    let body = "--XyZ\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nform\r\n\
        --XyZ\r\nContent-Disposition: form-data; name=\"n\"\r\n\r\n2\r\n\
        --XyZ\r\nContent-Disposition: form-data; name=\"done\"\r\n\r\ntrue\r\n\
        --XyZ\r\nContent-Disposition: form-data; name=\"colors\"\r\n\r\nred\r\n\
        --XyZ\r\nContent-Disposition: form-data; name=\"colors\"\r\n\r\nblue\r\n\
        --XyZ\r\nContent-Disposition: form-data; name=\"@jsonPayload\"\r\n\r\n{\"meta\":{\"k\":1}}\r\n\
        --XyZ--\r\n";
    let response = server
        .post("/api/collections/items/records")
        .raw("multipart/form-data; boundary=XyZ", body)
        .send();
    assert_eq!(response.status, 200, "{}", response.json());
    let created = response.json();
    assert_eq!(
        (created["title"].clone(), created["n"].clone(), created["done"].clone()),
        (json!("form"), json!(2), json!(true))
    );
    assert_eq!(created["colors"], json!(["red", "blue"]));
    assert_eq!(created["meta"], json!({"k": 1}));

    let file = "--XyZ\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nok\r\n\
        --XyZ\r\nContent-Disposition: form-data; name=\"doc\"; filename=\"a.txt\"\r\nContent-Type: text/plain\r\n\r\nhello\r\n--XyZ--\r\n";
    let refused = server
        .post("/api/collections/items/records")
        .raw("multipart/form-data; boundary=XyZ", file)
        .send();
    assert_eq!(refused.status, 400);
    assert!(refused.json()["message"].as_str().unwrap().contains("File uploads are not supported"));
    let broken = server
        .post("/api/collections/items/records")
        .raw("multipart/form-data; boundary=XyZ", "--XyZ\r\nno")
        .send();
    assert_eq!(broken.status, 400);

    let form = server
        .post("/api/collections/items/records")
        .raw("application/x-www-form-urlencoded", "title=url+form&n=-4&colors=red&colors=green")
        .send();
    assert_eq!(form.status, 200, "{}", form.json());
    let form = form.json();
    assert_eq!((form["title"].clone(), form["n"].clone()), (json!("url form"), json!(-4)));
    assert_eq!(form["colors"], json!(["red", "green"]));
    let padded = server
        .post("/api/collections/items/records")
        .raw("application/x-www-form-urlencoded", "title=ab&n=007")
        .send();
    assert_eq!(
        padded.json()["n"],
        7,
        "\"007\" stays text in the body and is cast by the number field"
    );
}

fn seed_numbers(server: &TestServer, admin: &str) {
    server.create_collection(
        admin,
        json!({"name": "nums", "listRule": "", "viewRule": "", "createRule": "",
        "fields": [{"name": "n", "type": "number"}, {"name": "title", "type": "text"}],
        "indexes": ["CREATE INDEX idx_n ON nums (n)"]}),
    );
    for n in 1..=5 {
        server.create_record("nums", None, json!({"n": n, "title": format!("x{n}")}));
    }
}

#[test]
fn lists_page_sort_filter_and_count() {
    let server = TestServer::start();
    let admin = server.admin();
    seed_numbers(&server, &admin);
    let filter = encode("n >= 2 && title ~ 'x'");
    let page = server
        .get(&format!(
            "/api/collections/nums/records?page=1&perPage=2&filter={filter}&sort=-n,%2Btitle"
        ))
        .send();
    assert_eq!(page.status, 200);
    let page = page.json();
    assert_eq!((page["page"].clone(), page["perPage"].clone()), (json!(1), json!(2)));
    assert_eq!((page["totalItems"].clone(), page["totalPages"].clone()), (json!(4), json!(2)));
    let ns: Vec<i64> =
        page["items"].as_array().unwrap().iter().map(|i| i["n"].as_i64().unwrap()).collect();
    assert_eq!(ns, [5, 4]);
    let last = server.get("/api/collections/nums/records?page=3&perPage=2&sort=n").send().json();
    assert_eq!(last["items"].as_array().unwrap().len(), 1);
    assert_eq!(last["items"][0]["n"], 5);
    let beyond = server.get("/api/collections/nums/records?page=99&perPage=2").send().json();
    assert_eq!(beyond["items"], json!([]));
    let skipped = server.get("/api/collections/nums/records?skipTotal=true").send().json();
    assert_eq!(
        (skipped["totalItems"].clone(), skipped["totalPages"].clone()),
        (json!(-1), json!(-1))
    );
    assert_eq!(skipped["perPage"], 30, "the default page size is echoed");
    let capped = server.get("/api/collections/nums/records?perPage=5000&skipTotal=1").send().json();
    assert_eq!(capped["perPage"], 1000, "perPage is capped and echoed capped");
    let first = server
        .get(&format!(
            "/api/collections/nums/records?page=1&perPage=1&skipTotal=1&filter={}",
            encode("title = \"x3\"")
        ))
        .send()
        .json();
    assert_eq!(first["items"][0]["n"], 3);
    let params = server
        .get(&format!("/api/collections/nums/records?filter={}", encode("n ?> 3 || n = -1")))
        .send()
        .json();
    assert_eq!(params["totalItems"], 2);
    for bad in [
        "page=x",
        "perPage=1.5",
        "sort=-nope",
        "filter=nope%20%3D%201",
        "filter=n%20%3D%3D",
        "sort=%40random",
    ] {
        let response = server.get(&format!("/api/collections/nums/records?{bad}")).send();
        assert_eq!(response.status, 400, "{bad}");
        assert_eq!(response.json()["status"], 400);
    }
}

/// A sort no index gives holds the records in memory, at most the server's
/// `sort_memory_bytes_max`; a page past `LIST_OFFSET_MAX` skipped items is a 400.
#[test]
fn list_memory_is_bounded() {
    use nanodb_server::http::query::LIST_OFFSET_MAX;
    let server = TestServer::start_with(|config| config.sort_memory_bytes_max = 4096);
    let admin = server.admin();
    seed_numbers(&server, &admin);
    let sorted = server.get("/api/collections/nums/records?sort=-title").send();
    assert_eq!(sorted.status, 200, "5 small records fit");
    for n in 0..40 {
        server.create_record("nums", None, json!({"n": 10 + n, "title": "t".repeat(200)}));
    }
    let over = server.get("/api/collections/nums/records?sort=-title&perPage=1").send();
    assert_eq!(over.status, 400, "45 records, over 8 KiB, held to sort");
    assert!(over.json()["message"].as_str().unwrap().contains("sort"), "{}", over.json());
    let indexed = server.get("/api/collections/nums/records?sort=n&perPage=1").send();
    assert_eq!(indexed.status, 200, "an index gives the order: nothing held");
    let last = LIST_OFFSET_MAX + 1;
    let at = server.get(&format!("/api/collections/nums/records?page={last}&perPage=1")).send();
    assert_eq!(at.status, 200, "skipping exactly LIST_OFFSET_MAX items");
    let past = server.get(&format!("/api/collections/nums/records?page={}&perPage=1", last + 1));
    let past = past.send();
    assert_eq!(past.status, 400);
    assert_eq!(past.json()["status"], 400);
}

#[test]
fn full_lists_page_until_a_short_page() {
    let server = TestServer::start();
    let admin = server.admin();
    seed_numbers(&server, &admin);
    let mut seen = Vec::new();
    for page in 1.. {
        let list = server
            .get(&format!("/api/collections/nums/records?page={page}&perPage=2&skipTotal=1&sort=n"))
            .send()
            .json();
        let items = list["items"].as_array().unwrap();
        seen.extend(items.iter().map(|item| item["n"].as_i64().unwrap()));
        if items.len() < list["perPage"].as_u64().unwrap() as usize {
            break;
        }
    }
    assert_eq!(seen, [1, 2, 3, 4, 5]);
}

#[test]
fn fields_pick_keys_and_expand_follows_relations() {
    let server = TestServer::start();
    let admin = server.admin();
    kitchen_sink(&server, &admin);
    server.create_collection(
        &admin,
        json!({"name": "notes", "listRule": "", "viewRule": "", "createRule": "",
        "fields": [{"name": "item", "type": "relation", "collectionId": "items"}]}),
    );
    let a = server.create_record("tags", None, json!({"label": "a"}));
    let b = server.create_record("tags", None, json!({"label": "b"}));
    let (a_id, b_id) = (a["id"].as_str().unwrap(), b["id"].as_str().unwrap());
    let item = server.create_record(
        "items",
        None,
        json!({"title": "ex", "tag": a_id, "tagList": [b_id, a_id]}),
    );
    server.create_record("notes", None, json!({"item": item["id"]}));
    let list = server.get("/api/collections/items/records?expand=tag,tagList&fields=id,title,expand.tag.label,expand.tagList.id").send().json();
    let first = &list["items"][0];
    assert_eq!(first["title"], "ex");
    assert!(first.get("n").is_none(), "{first}");
    assert_eq!(first["expand"]["tag"], json!({"label": "a"}));
    assert_eq!(
        first["expand"]["tagList"],
        json!([{"id": b_id}, {"id": a_id}]),
        "in relation order"
    );
    let nested = server.get("/api/collections/notes/records?expand=item.tag").send().json();
    assert_eq!(nested["items"][0]["expand"]["item"]["expand"]["tag"]["label"], "a");
    assert_eq!(nested["items"][0]["expand"]["item"]["collectionName"], "items");
    let plain = server
        .get(&format!("/api/collections/items/records/{}", item["id"].as_str().unwrap()))
        .send()
        .json();
    assert!(plain.get("expand").is_none(), "expand only when asked");
    let unknown = server.get("/api/collections/items/records?expand=title,ghost").send();
    assert_eq!(unknown.status, 200);
    assert!(unknown.json()["items"][0].get("expand").is_none());
    let created = server
        .post("/api/collections/items/records?expand=tag&fields=id,expand")
        .json(&json!({"title": "ex2", "tag": a_id}))
        .send()
        .json();
    assert_eq!(created["expand"]["tag"]["label"], "a");
    assert_eq!(created.as_object().unwrap().len(), 2, "{created}");
}

#[test]
fn empty_bodies_with_a_json_content_type_are_accepted() {
    let server = TestServer::start();
    let admin = server.admin();
    kitchen_sink(&server, &admin);
    let created = server.create_record("items", None, json!({"title": "ok"}));
    let id = created["id"].as_str().unwrap();
    let viewed = server
        .get(&format!("/api/collections/items/records/{id}"))
        .raw("application/json", "")
        .send();
    assert_eq!(viewed.status, 200);
    let patched = server
        .patch(&format!("/api/collections/items/records/{id}"))
        .raw("application/json", "")
        .send();
    assert_eq!(patched.status, 200, "an empty PATCH changes nothing");
    let deleted = server
        .delete(&format!("/api/collections/items/records/{id}"))
        .raw("application/json", "")
        .send();
    assert_eq!(deleted.status, 204);
}

#[test]
fn superusers_see_and_set_hidden_fields() {
    let server = TestServer::start();
    let admin = server.admin();
    kitchen_sink(&server, &admin);
    let guest = server.create_record("items", None, json!({"title": "ok", "secret": "from guest"}));
    let id = guest["id"].as_str().unwrap();
    let as_admin = server
        .get(&format!("/api/collections/items/records/{id}"))
        .auth(Some(&admin))
        .send()
        .json();
    assert_eq!(as_admin["secret"], "", "a guest cannot set a hidden field");
    let set = server
        .patch(&format!("/api/collections/items/records/{id}"))
        .auth(Some(&admin))
        .json(&json!({"secret": "s3"}))
        .send()
        .json();
    assert_eq!(set["secret"], "s3");
    let as_guest = server.get(&format!("/api/collections/items/records/{id}")).send().json();
    assert!(as_guest.get("secret").is_none());
}
